"""``--workers N`` where the platform has ``SO_REUSEPORT`` (Linux): one listening socket per worker.

uvicorn's own supervisor hands one shared listening socket to every worker; they race to accept,
and Linux wakes the waiting workers last-in first-out, so a burst of keep-alive connections (a load
balancer's pool, wrk's) mostly lands on one worker while the other idles (issue #20). Here the
parent binds one ``SO_REUSEPORT`` socket per worker to the same address, and the kernel spreads new
connections across them by a hash of each connection's addresses.

The workers are uvicorn's own (:class:`uvicorn.supervisors.multiprocess.Process`: spawned with the
config, logging set up again in the child, health pings), supervised as uvicorn 0.55's
``Multiprocess`` does it: Ctrl-C or SIGTERM stops them all; a worker that dies is replaced on its
socket (the parent keeps every socket open, so connections queued on it wait for the replacement
instead of being reset); a worker that fails to start stops the rest, and the command exits with an
error. uvicorn's HUP/TTIN/TTOU signals (rolling restart, add or remove a worker) are not handled.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
from types import FrameType
from typing import TYPE_CHECKING, Any

from shipyard.errors import ShipyardError

if TYPE_CHECKING:
    from uvicorn import Config
    from uvicorn.supervisors.multiprocess import Process

__all__ = ["bind", "run"]

logger = logging.getLogger("uvicorn.error")


def bind(host: str, port: int, count: int) -> list[socket.socket]:
    """``count`` sockets bound to ``host:port`` with ``SO_REUSEPORT`` (not yet listening; each
    worker's server listens on its own). A taken port raises :class:`ShipyardError`, also when the
    holder is another ``SO_REUSEPORT`` group of this user: a plain bind is tried first, as the kernel
    would otherwise let a second server join this one's group and take half its connections."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sockets: list[socket.socket] = []
    try:
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn: TIME_WAIT is no obstacle
            probe.bind((host, port))
            port = probe.getsockname()[1]  # port 0: the one the system chose, for every worker
        for _ in range(count):
            sock = socket.socket(family, socket.SOCK_STREAM)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            sock.bind((host, port))
            sock.set_inheritable(True)
    except OSError as exc:
        for sock in sockets:
            sock.close()
        raise ShipyardError(f"cannot listen on {host} port {port}: {exc.strerror or exc}") from None
    return sockets


def run(app: str, *, host: str, port: int, workers: int, **options: Any) -> None:
    """Serve the factory import string ``app`` with ``workers`` workers, each on its own socket, until
    Ctrl-C or SIGTERM. ``options`` are the rest of :class:`uvicorn.Config`'s, as for ``uvicorn.run``."""
    import uvicorn

    sockets = bind(host, port, workers)  # first: a taken port is one error line, before any logging setup
    try:
        config = uvicorn.Config(app, host=host, port=port, workers=workers, **options)  # sets up logging here too
        logger.info("Uvicorn running on %s port %d (Press CTRL+C to quit); one SO_REUSEPORT socket per worker",
                    host, sockets[0].getsockname()[1])
        _Supervisor(config, sockets).run()
    finally:
        for sock in sockets:
            sock.close()


class _Supervisor:
    """Worker ``i`` serves ``sockets[i]``; replaced when it dies, all stopped on SIGINT/SIGTERM."""

    def __init__(self, config: Config, sockets: list[socket.socket]) -> None:
        self.config = config
        self.sockets = sockets
        self.should_exit = threading.Event()

    def _start(self, sock: socket.socket) -> Process:
        from uvicorn.supervisors.multiprocess import Process

        process = Process(self.config, [sock])
        process.start()
        return process

    def _stop(self, signum: int, frame: FrameType | None) -> None:
        logger.info("Received %s, exiting.", signal.Signals(signum).name)
        self.should_exit.set()

    def run(self) -> None:
        from uvicorn.config import STARTUP_FAILURE

        previous = {sig: signal.signal(sig, self._stop) for sig in (signal.SIGINT, signal.SIGTERM)}
        logger.info("Started parent process [%d]", os.getpid())
        processes = [self._start(sock) for sock in self.sockets]
        failed: int | None = None
        try:
            while failed is None and not self.should_exit.wait(0.5):
                for i, process in enumerate(processes):
                    if self.should_exit.is_set() or process.is_alive(timeout=self.config.timeout_worker_healthcheck):
                        continue
                    process.kill()  # dead, or hung: not answering its health ping
                    process.join()
                    if process.exitcode == STARTUP_FAILURE:  # the app or its model: every restart would fail too
                        logger.error("Child process [%d] failed to start, stopping the parent process.", process.pid)
                        failed = process.pid
                        break
                    logger.info("Child process [%d] died", process.pid)
                    processes[i] = self._start(self.sockets[i])
        finally:
            for process in processes:
                process.terminate()
            for process in processes:
                process.join()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            logger.info("Stopping parent process [%d]", os.getpid())
        if failed is not None:
            raise ShipyardError(f"worker process {failed} failed to start; its error is logged above")
