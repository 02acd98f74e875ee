"""``shipyard deploy build``: a folder to build a deployment's serving image and run it on Kubernetes.

:func:`build_bundle` reads deployment ``NAME`` and the manifest of every version it serves
(routes and shadows) and writes:

- ``requirements.txt``: the union of those versions' pinned requirements, one ``name==version``
  a line, sorted and deduplicated, plus ``shipyard-mlops[server]`` at the given version. Two
  versions pinning one package differently is a ``Conflict`` naming both; a requirement that is
  not an exact pin is refused (the image would not be reproducible).
- ``Dockerfile``: ``python:3.X-slim`` for the Python minor version the models were saved with,
  installing that file and nothing else, running as a non-root user, with a ``HEALTHCHECK``
  and ``CMD shipyard deploy run NAME --host 0.0.0.0 --port 8080 --insecure`` (the network in
  front decides who reaches it; ``SHIPYARD_SERVING_AUTH=true`` at run time requires tokens).
- ``kubernetes.yaml`` and ``kserve.yaml``: see :mod:`shipyard.deploy.manifests`.
- ``README.md``: how to build, push and apply.

The same deployment revision gives the same bytes (nothing depends on the clock or the
machine), so a bundle can be committed and diffed. :func:`render_bundle` computes it without
writing anything.

Domain code: both take the :class:`~shipyard.models.registry.RegistryService` (the deployment
from its store, each version's manifest from its artifact store), or a ``Client``, the SDK's
spelling (:func:`~shipyard.models.registry.as_registry`).
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from shipyard._version import __version__
from shipyard.deploy.manifests import (
    ARTIFACT_URI_KEY,
    HEALTH_LIVE,
    HEALTH_READY,
    PORT,
    RUN_AS,
    TRACKING_URI_KEY,
    Target,
    dump_yaml,
    inference_service,
    kubernetes_name,
    kubernetes_objects,
)
from shipyard.entities import Deployment, ModelRef
from shipyard.errors import Conflict, InvalidInput
from shipyard.models.registry import HasRegistry, RegistryService, as_registry

__all__ = ["DOCKERFILE", "KSERVE", "KUBERNETES", "README", "REQUIREMENTS", "SHIPYARD_DISTRIBUTION", "Bundle",
           "Pin", "build_bundle", "merge_requirements", "render_bundle"]

DOCKERFILE = "Dockerfile"
REQUIREMENTS = "requirements.txt"
KUBERNETES = "kubernetes.yaml"
KSERVE = "kserve.yaml"
README = "README.md"
SHIPYARD_DISTRIBUTION = "shipyard-mlops"
# shipyard-mlops's own requires-python: an older interpreter cannot install the serving app.
_MIN_PYTHON = (3, 11)
# name[extra,...]==version, nothing else (no ranges, markers, URLs or options).
_PIN = re.compile(r"\s*(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[(?P<extras>[^\]]*)\])?\s*==\s*"
                  r"(?P<version>[A-Za-z0-9][A-Za-z0-9.+!_-]*)\s*")


@dataclass(frozen=True, order=True)
class Pin:
    """An exact requirement ``name[extras]==version``, ``name`` normalised as PEP 503 does."""

    name: str
    version: str
    extras: tuple[str, ...] = ()

    @classmethod
    def parse(cls, text: str, owner: str) -> Pin:
        """``InvalidInput`` naming ``owner`` (whose requirement it is) unless ``text`` is an exact pin."""
        found = _PIN.fullmatch(text)
        if found is None:
            raise InvalidInput(f"{owner} requires {text.strip()!r}, which is not an exact pin (name==version): "
                               "an image must install the same packages every time it is built; re-log the "
                               "model with its packages pinned")
        extras = tuple(sorted({_normalise(e) for e in (found["extras"] or "").split(",") if e.strip()}))
        return cls(_normalise(found["name"]), found["version"], extras)

    def __str__(self) -> str:
        extras = f"[{','.join(self.extras)}]" if self.extras else ""
        return f"{self.name}{extras}=={self.version}"


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name.strip()).lower()


def merge_requirements(sources: Iterable[tuple[str, Sequence[str]]]) -> list[Pin]:
    """The union of every ``(owner, requirements)`` pair's pins, sorted by name, one per package
    (extras merged). Raises ``Conflict`` naming both owners when two pin a package differently."""
    chosen: dict[str, tuple[Pin, str]] = {}
    for owner, requirements in sources:
        for text in requirements:
            pin = Pin.parse(text, owner)
            if pin.name not in chosen:
                chosen[pin.name] = (pin, owner)
                continue
            before, first = chosen[pin.name]
            if before.version != pin.version:
                raise Conflict(f"conflicting pins for {pin.name}: {first} requires {pin.name}=={before.version} "
                               f"and {owner} requires {pin.name}=={pin.version}; one image cannot serve both "
                               "(serve them from separate deployments, or re-log one with the other's version)")
            extras = tuple(sorted(set(before.extras) | set(pin.extras)))
            chosen[pin.name] = (Pin(pin.name, pin.version, extras), first)
    return sorted(pin for pin, _ in chosen.values())


@dataclass(frozen=True)
class Bundle:
    """What :func:`render_bundle` made for ``deployment``: ``files`` (name -> text) to build
    ``image``, and ``warnings`` for people. ``paths`` are the files once written."""

    deployment: Deployment
    image: str
    python_version: str
    requirements: tuple[Pin, ...]
    files: dict[str, str]
    warnings: tuple[str, ...] = ()
    paths: tuple[Path, ...] = field(default=())


def _python_minor(found: Sequence[tuple[ModelRef, str]], override: str | None) -> str:
    """``3.X`` of the interpreter every version was saved with (``Conflict`` when they differ)."""
    minors: list[tuple[ModelRef | None, str]]
    if override is not None:
        minors = [(None, override)]
    else:
        minors = [(ref, v) for ref, v in found if v]
        if not minors:
            raise InvalidInput("no model version of the deployment records the Python version it was saved with "
                               f"({', '.join(str(ref) for ref, _ in found)}); pass python_version='3.X'")
    chosen: tuple[ModelRef | None, str] | None = None
    for ref, text in minors:
        parsed = re.match(r"(\d+)\.(\d+)(?:\.|$)", text.strip())
        if parsed is None:
            raise InvalidInput(f"{ref or 'python_version'}: {text!r} is not a Python version (3.X or 3.X.Y)")
        minor = f"{parsed[1]}.{parsed[2]}"
        if (int(parsed[1]), int(parsed[2])) < _MIN_PYTHON:
            raise InvalidInput(f"{ref or 'python_version'} needs Python {minor}, and the serving app needs "
                               f"Python {'.'.join(map(str, _MIN_PYTHON))} or newer; re-log the model with a newer "
                               "Python")
        if chosen is None:
            chosen = (ref, minor)
        elif chosen[1] != minor:
            raise Conflict(f"conflicting Python versions: {chosen[0]} was saved with Python {chosen[1]} and {ref} "
                           f"with Python {minor}; one image has one Python")
    assert chosen is not None
    return chosen[1]


def render_bundle(registry: RegistryService | HasRegistry, deployment_name: str, *, image: str | None = None,
                  shipyard_version: str = __version__, max_replicas: int | None = None, secret: str | None = None,
                  python_version: str | None = None) -> Bundle:
    """The bundle's files for deployment ``deployment_name`` as it is now, without writing them.

    ``image`` defaults to ``<name>:rev<revision>``; ``max_replicas`` (the autoscalers' ceiling)
    to three times the replicas; ``secret`` (holding ``tracking-uri`` and optionally
    ``artifact-uri``) to ``<name>-shipyard``; ``python_version`` to the models' own. Raises
    ``NotFound`` for an unknown deployment or a version since deleted, ``Conflict`` for
    conflicting pins or Python versions, ``InvalidInput`` for an unpinned requirement."""
    from shipyard.deploy.rollout import DeploymentService

    service = as_registry(registry)
    deployment = DeploymentService(service.store, service.principal).get(deployment_name)
    name = kubernetes_name(deployment.name)
    replicas = deployment.resources.replicas
    image = _check_image(image or f"{name}:rev{deployment.revision}")
    max_replicas = max(3 * replicas, 1) if max_replicas is None else max_replicas
    if isinstance(max_replicas, bool) or not isinstance(max_replicas, int) or max_replicas < max(replicas, 1):
        raise InvalidInput(f"max_replicas: the autoscaler's ceiling must be a whole number of at least "
                           f"{max(replicas, 1)} (the deployment's replicas), got {max_replicas!r}",
                           field="max_replicas")
    refs = list(dict.fromkeys(deployment.versions))
    manifests = [(ref, service.get_model_manifest(ref.uri)) for ref in refs]
    python = _python_minor([(ref, m.python_version or "") for ref, m in manifests], python_version)
    pins = merge_requirements([*((str(ref), list(m.requirements)) for ref, m in manifests),
                               ("the serving image", [f"{SHIPYARD_DISTRIBUTION}[server]=={shipyard_version}"])])
    target = Target(deployment, image, max_replicas, secret or f"{name}-shipyard")
    header = (f"Generated by `shipyard deploy build {deployment.name}` from revision {deployment.revision}; "
              "rebuild rather than edit.")
    files = {
        DOCKERFILE: _dockerfile(deployment, python, shipyard_version),
        REQUIREMENTS: "".join(f"{pin}\n" for pin in pins),
        KUBERNETES: dump_yaml(kubernetes_objects(target), header),
        KSERVE: dump_yaml([inference_service(target)], header),
        README: _readme(target, python),
    }
    warnings = []
    if not deployment.resources.cpu and replicas >= 1:
        warnings.append("the deployment sets no CPU per replica, and the HorizontalPodAutoscaler measures CPU "
                        "utilisation against the pods' CPU request: give the deployment one (--cpu 500m on create, "
                        "or shipyard.deploy.update(..., resources=...)) or the namespace a default (a LimitRange)")
    if replicas < 1:
        warnings.append("the deployment has 0 replicas: kubernetes.yaml has no HorizontalPodAutoscaler "
                        "(it cannot scale up from zero)")
    return Bundle(deployment, image, python, tuple(pins), files, tuple(warnings))


def build_bundle(registry: RegistryService | HasRegistry, deployment_name: str, out_dir: str | Path, *,
                 image: str | None = None, shipyard_version: str = __version__, max_replicas: int | None = None,
                 secret: str | None = None, python_version: str | None = None) -> Bundle:
    """Write :func:`render_bundle`'s files into ``out_dir`` (created when missing; files of the
    same names are replaced, each atomically, others left alone). Returns the bundle with the
    paths written, in order."""
    bundle = render_bundle(registry, deployment_name, image=image, shipyard_version=shipyard_version,
                           max_replicas=max_replicas, secret=secret, python_version=python_version)
    folder = Path(out_dir)
    if folder.exists() and not folder.is_dir():
        raise InvalidInput(f"--out {folder} is a file, not a folder", field="out")
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for file_name, text in bundle.files.items():
        path = folder / file_name
        _write_atomically(path, text)
        written.append(path)
    return Bundle(bundle.deployment, bundle.image, bundle.python_version, bundle.requirements, bundle.files,
                  bundle.warnings, tuple(written))


def _write_atomically(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _check_image(image: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._/:@-]*", image):
        raise InvalidInput(f"image: {image!r} is not an image reference (REPOSITORY:TAG, e.g. "
                           "registry.example.com/churn-api:1.0)", field="image")
    return image


def _roles(deployment: Deployment) -> list[tuple[str, str, str]]:
    """(role, models:/ URI, traffic) of every version it serves."""
    rows = [("primary" if i == 0 else "canary", r.uri, f"{r.weight}%") for i, r in enumerate(deployment.routes)]
    return rows + [("shadow", ref.uri, "mirror") for ref in deployment.shadows]


def _dockerfile(deployment: Deployment, python: str, shipyard_version: str) -> str:
    serving = "\n".join(f"#   {role:<8} {uri} ({traffic})" for role, uri, traffic in _roles(deployment))
    probe = (f"import urllib.request; urllib.request.urlopen('http://127.0.0.1:{PORT}{HEALTH_LIVE}', timeout=4)")
    # --insecure: in a container the orchestrator's network decides who reaches the port; tokens
    # are switched on at run time (SHIPYARD_SERVING_AUTH), which --insecure does not weaken.
    command = ["shipyard", "deploy", "run", deployment.name, "--host", "0.0.0.0", "--port", str(PORT), "--insecure"]
    return f"""\
# Serving image for Shipyard deployment {deployment.name!r} (environment {deployment.environment}, revision \
{deployment.revision}).
# Generated by `shipyard deploy build {deployment.name}`; rebuild rather than edit. Serves:
{serving}
#
# Run-time configuration, never baked into the image:
#   SHIPYARD_TRACKING_URI  required: the Shipyard server (https://...) or database (postgresql://...)
#                          the deployment and its models are read from
#   SHIPYARD_ARTIFACT_URI  only with a database: where the model files are (s3://..., gs://...)
#   SHIPYARD_SERVING_AUTH  true: every request but the health probes needs an API token with a role
#                          in the deployment's project (docs/security.md); else anyone who reaches
#                          the port may call it
FROM python:{python}-slim

LABEL org.opencontainers.image.title={json.dumps(deployment.name)} \\
      dev.shipyard.deployment={json.dumps(deployment.name)} \\
      dev.shipyard.revision="{deployment.revision}" \\
      dev.shipyard.version="{shipyard_version}"

ENV PYTHONDONTWRITEBYTECODE=1 \\
    PYTHONUNBUFFERED=1 \\
    PIP_NO_CACHE_DIR=1 \\
    PIP_DISABLE_PIP_VERSION_CHECK=1 \\
    PIP_ROOT_USER_ACTION=ignore

RUN groupadd --system --gid {RUN_AS} shipyard \\
 && useradd --system --uid {RUN_AS} --gid shipyard --home-dir /home/shipyard --create-home shipyard

# Exactly the models' pinned requirements and shipyard-mlops[server]=={shipyard_version}, nothing else.
COPY {REQUIREMENTS} /tmp/{REQUIREMENTS}
RUN python -m pip install --no-input --requirement /tmp/{REQUIREMENTS} \\
 && rm /tmp/{REQUIREMENTS}

USER {RUN_AS}:{RUN_AS}
WORKDIR /home/shipyard
EXPOSE {PORT}
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \\
    CMD {json.dumps(["python", "-c", probe])}
CMD {json.dumps(command)}
"""


def _readme(target: Target, python: str) -> str:
    d, name, image = target.deployment, target.name, target.image
    rows = "\n".join(f"| {role} | `{uri}` | {traffic} |" for role, uri, traffic in _roles(d))
    hpa = (f"scaled on CPU (target {target.cpu_target_percent}%) between {d.resources.replicas} and "
           f"{target.max_replicas} replicas" if d.resources.replicas >= 1 else "at 0 replicas, without an autoscaler")
    return f"""\
# {d.name}: serving image and manifests

Generated by `shipyard deploy build {d.name}` from revision {d.revision} of deployment `{d.name}`
(environment `{d.environment}`); rebuild rather than edit. The image serves:

| Role | Version | Traffic |
|---|---|---|
{rows}

| File | What it is |
|---|---|
| `{DOCKERFILE}` | `python:{python}-slim`, `{REQUIREMENTS}`, a non-root user, `shipyard deploy run` on port {PORT} |
| `{REQUIREMENTS}` | every version's pinned requirements, and `{SHIPYARD_DISTRIBUTION}[server]` |
| `{KUBERNETES}` | Deployment, Service (port 80 to {PORT}) and HorizontalPodAutoscaler, {hpa} |
| `{KSERVE}` | the same image as a KServe InferenceService (custom predictor, Open Inference Protocol v2) |

## Build and push

```bash
docker build -t {image} .
docker push {image}
```

The manifests name `{image}`; to push elsewhere, build the bundle again with `--image REPOSITORY:TAG`.

## Configure

The serving process reads the deployment and its models from the tracking store at start-up. Nothing
about the store is in the image: the manifests take `SHIPYARD_TRACKING_URI` from the Secret `{target.secret}`
(key `{TRACKING_URI_KEY}`: a Shipyard server, `https://...`, or a database, `postgresql://...`) and, when the
tracking URI is a database, `SHIPYARD_ARTIFACT_URI` from its optional key `{ARTIFACT_URI_KEY}`.

```bash
kubectl create secret generic {target.secret} --from-literal={TRACKING_URI_KEY}=https://shipyard.example.com
```

## Apply

```bash
kubectl apply -f {KUBERNETES}       # plain Kubernetes
kubectl apply -f {KSERVE}           # or, where KServe is installed
kubectl rollout status deployment/{name}
```

Pods are live at `{HEALTH_LIVE}` as soon as the process answers and ready at `{HEALTH_READY}` once
every model is loaded; Prometheus scrapes `/metrics` on port {PORT}.

## Try it locally

```bash
docker run --rm -p {PORT}:{PORT} -e SHIPYARD_TRACKING_URI=https://shipyard.example.com {image}
curl -s localhost:{PORT}{HEALTH_READY}
```

The image holds the requirements of the versions above only: after a canary, shadow or promote that brings
in another version, build the bundle again and roll out the new image.
"""
