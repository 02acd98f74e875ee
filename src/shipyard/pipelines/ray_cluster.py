"""Ray as an executor: connecting to a cluster and running functions on it as tasks with resource requests.

Shared by pipelines (a step is a task) and tuning (a trial is a task). Nothing is sent to the cluster but
picklable task descriptions; values travel through the artifact store and results through the tracking
store, so a task on any node sees what a task on another node wrote as long as both stores are shared
(a team server, PostgreSQL, S3) — see docs/scale-out.md.
"""

from __future__ import annotations

import concurrent.futures as futures
import contextlib
import os
import socket
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from shipyard.errors import ClusterUnavailable, InvalidInput, MissingDependency

__all__ = ["Cluster", "connected", "import_ray", "ray_options"]

CONNECT_TIMEOUT_S = 5.0
# Ray's own connection attempt retries for minutes against an address where nothing listens; a plain TCP
# connect answers in milliseconds, so an unreachable address fails fast and before anything is recorded.
FORWARDED_ENV_PREFIXES = ("SHIPYARD_",)


def import_ray() -> ModuleType:
    """The ``ray`` module, or ``MissingDependency`` naming the extra that installs it."""
    try:
        import ray
    except ImportError:
        raise MissingDependency("the ray executor needs Ray, which is not installed here: "
                                "pip install 'shipyard-mlops[ray]'", package="ray", extra="ray") from None
    return ray


def _host_port(address: str) -> tuple[str, int] | None:
    """The (host, port) a Ray address names, or None for addresses Ray resolves itself (``auto``, ``local``)."""
    text = address.strip()
    if text in ("auto", "local", ""):
        return None
    scheme, sep, rest = text.partition("://")
    if not sep:
        scheme, rest = "", text
    if scheme not in ("", "ray"):
        raise InvalidInput(f"Ray address {address!r} is not valid: expected HOST:PORT (the head node's GCS, port "
                           "6379 by default), ray://HOST:PORT (Ray Client) or 'auto'")
    host, colon, port = rest.rstrip("/").rpartition(":")
    if not colon or not host or not port.isdigit():
        default = 10001 if scheme == "ray" else 6379
        host, port = rest.rstrip("/"), str(default)
    return host.strip("[]"), int(port)


def check_reachable(address: str) -> None:
    """``ClusterUnavailable`` unless something listens at ``address`` (checked in seconds, not minutes)."""
    target = _host_port(address)
    if target is None:
        return
    try:
        with socket.create_connection(target, timeout=CONNECT_TIMEOUT_S):
            pass
    except OSError as exc:
        raise ClusterUnavailable(f"cannot reach the Ray cluster at {address}: {exc.strerror or exc}. Start one with "
                                 "`ray start --head --num-cpus N` (its address is printed), or check --ray-address "
                                 "/ RAY_ADDRESS", address=address) from None


@dataclass(frozen=True)
class Cluster:
    """The Ray cluster a run uses: its address and the resources it has in total."""

    address: str
    resources: dict[str, float]
    nodes: int

    def check_fits(self, what: str, request: Mapping[str, float]) -> None:
        """``InvalidInput`` when ``request`` (as :func:`ray_options` names it) exceeds the whole cluster's
        resources: Ray would wait forever for a node that can take it."""
        for name, amount in request.items():
            have = self.resources.get(_RAY_NAMES.get(name, name), 0.0)
            if amount > have:
                unit = "bytes" if name == "memory" else ""
                raise InvalidInput(f"{what} asks for {name}={amount:g}{unit and ' ' + unit} but the Ray cluster at "
                                   f"{self.address} has {have:g} in total; lower the request or add nodes",
                                   resource=name, requested=amount, available=have)


_RAY_NAMES = {"cpus": "CPU", "gpus": "GPU", "memory": "memory"}


def ray_options(resources: Mapping[str, float]) -> dict[str, Any]:
    """``@step(resources=...)`` names as ``.options(...)`` of a Ray task: cpus, gpus, memory, and custom
    resources under ``resources``. Ray retries nothing by itself: steps and trials have their own policy."""
    options: dict[str, Any] = {"max_retries": 0}
    custom: dict[str, float] = {}
    for name, amount in resources.items():
        if name == "cpus":
            options["num_cpus"] = amount
        elif name == "gpus":
            options["num_gpus"] = amount
        elif name == "memory":
            options["memory"] = int(amount)
        else:
            custom[name] = amount
    if custom:
        options["resources"] = custom
    return options


def _use_token_if_available() -> None:
    """Send the Ray token this machine holds. Ray enables token authentication for clusters it starts, and
    reads the token when it starts one itself, but a process that only connects by address leaves it out
    unless ``RAY_AUTH_MODE=token`` is set; without it the connection is refused after a minute of retries."""
    if "RAY_AUTH_MODE" in os.environ:
        return
    if os.environ.get("RAY_AUTH_TOKEN") or os.environ.get("RAY_AUTH_TOKEN_PATH") or \
            os.path.exists(os.path.expanduser("~/.ray/auth_token")):
        os.environ["RAY_AUTH_MODE"] = "token"


@contextlib.contextmanager
def connected(address: str | None) -> Iterator[Cluster]:
    """Connected to Ray for the block: to the cluster at ``address`` (``HOST:PORT``, ``ray://HOST:PORT``,
    ``auto``), or without one to ``RAY_ADDRESS`` or a new local instance using this machine's CPUs. A
    connection this process already has is reused (and left open); one opened here is closed on exit.
    Raises ``ClusterUnavailable`` (nothing has been recorded then) and ``MissingDependency``."""
    target = address or os.environ.get("RAY_ADDRESS") or None
    if target and "ray" not in sys.modules:  # Ray reads its authentication mode when it is imported
        _use_token_if_available()
    ray = import_ray()
    opened = False
    if not ray.is_initialized():
        if target:
            check_reachable(target)
        env = {k: v for k, v in os.environ.items() if k.startswith(FORWARDED_ENV_PREFIXES)}
        try:
            ray.init(address=target, include_dashboard=False, logging_level="warning",
                     runtime_env={"env_vars": env} if env else None)
        except ConnectionError as exc:
            hint = (" (a cluster with token authentication, Ray's default, needs its token here: ~/.ray/auth_token "
                    "or RAY_AUTH_TOKEN)") if target else ""
            raise ClusterUnavailable(f"cannot connect to the Ray cluster at {target or 'a new local instance'}: "
                                     f"{exc}{hint}", address=target) from None
        opened = True
    try:
        context = ray.get_runtime_context()
        yield Cluster(getattr(context, "gcs_address", "") or address or "local",
                      {k: float(v) for k, v in ray.cluster_resources().items()}, len(ray.nodes()))
    finally:
        if opened:
            ray.shutdown()


class TaskFailed(Exception):
    """A Ray task that did not return: the worker died, or the task raised outside the code meant to catch it.
    The message carries Ray's account, with the remote traceback when there is one."""


def submit(fn: Callable[..., Any], args: tuple[Any, ...], resources: Mapping[str, float]) -> futures.Future[Any]:
    """Run ``fn(*args)`` as a Ray task; the future's exception is :class:`TaskFailed` for anything Ray raises."""
    ray = import_ray()
    remote = _remote(fn)
    ref = remote.options(**ray_options(resources)).remote(*args)
    inner = ref.future()
    outer: futures.Future[Any] = futures.Future()

    def settle(done: futures.Future[Any]) -> None:
        try:
            outer.set_result(done.result())
        except ray.exceptions.RayError as exc:  # RayTaskError's text holds the remote traceback
            outer.set_exception(TaskFailed(str(exc)))
        except BaseException as exc:
            outer.set_exception(TaskFailed(f"{type(exc).__name__}: {exc}"))

    inner.add_done_callback(settle)
    return outer


_remotes: dict[Callable[..., Any], Any] = {}


def _remote(fn: Callable[..., Any]) -> Any:
    if fn not in _remotes:
        _remotes[fn] = import_ray().remote(fn)
    return _remotes[fn]
