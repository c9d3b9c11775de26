"""``configsvc serve --workers N``: N server processes sharing one port.

Python serves one core per process, so a replica uses every core by running
N independent workers, each with its own etcd watch and mirror, bound to the
same port with SO_REUSEPORT (the kernel spreads connections over them). The
supervisor owns nothing but the children: it checks the port is free before
any worker binds it (SO_REUSEPORT would otherwise let a stray process share
it silently), forwards SIGINT/SIGTERM, restarts a worker that dies (at most
``MAX_RESTARTS`` within ``RESTART_WINDOW`` seconds, then gives up loudly) and
exits when every worker has stopped.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from types import FrameType

log = logging.getLogger(__name__)

MAX_RESTARTS = 5
RESTART_WINDOW = 60.0
_POLL = 0.2


def default_workers() -> int:
    """CPUs this process may run on (respects cpusets, unlike os.cpu_count)."""
    return max(1, len(os.sched_getaffinity(0)))


def split_listen(listen: str) -> tuple[str, int]:
    host, _, port = listen.rpartition(":")
    return host.strip("[]") or "::", int(port)


class Supervisor:
    """Runs and watches the worker processes."""

    def __init__(self, worker_command: Sequence[str], workers: int, grace: float) -> None:
        self._command = list(worker_command)
        self._count = workers
        self._grace = grace
        self._children: dict[int, subprocess.Popen[bytes]] = {}
        self._stopping = False
        self._restarts: list[float] = []

    def _spawn(self, slot: int) -> None:
        env = {**os.environ, "CONFIGSVC_WORKER_INDEX": str(slot)}
        self._children[slot] = subprocess.Popen(self._command, env=env)

    def _signal(self, signum: int, _frame: FrameType | None) -> None:
        self._stopping = True
        for child in self._children.values():
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)

    def run(self) -> int:
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, self._signal)
        for slot in range(self._count):
            self._spawn(slot)
        print(
            f"configsvc serve: {self._count} workers started "
            f"(pids {', '.join(str(c.pid) for c in self._children.values())})",
            file=sys.stderr,
            flush=True,
        )
        failed = False
        while True:
            alive = [c for c in self._children.values() if c.poll() is None]
            if self._stopping or failed:
                if not alive:
                    return 1 if failed else 0
                time.sleep(_POLL)
                continue
            for slot, child in list(self._children.items()):
                if child.poll() is not None:
                    failed = not self._restart(slot, child.returncode)
                    if failed:
                        self._signal(signal.SIGTERM, None)
                        self._stopping = False  # keep 'failed' as the exit reason
                        break
            time.sleep(_POLL)

    def _restart(self, slot: int, code: int | None) -> bool:
        now = time.monotonic()
        self._restarts = [t for t in self._restarts if now - t < RESTART_WINDOW]
        if len(self._restarts) >= MAX_RESTARTS:
            print(
                f"configsvc serve: worker {slot} exited ({code}); {MAX_RESTARTS} restarts "
                f"within {RESTART_WINDOW:.0f}s, giving up",
                file=sys.stderr,
                flush=True,
            )
            return False
        self._restarts.append(now)
        print(
            f"configsvc serve: worker {slot} exited ({code}); restarting",
            file=sys.stderr,
            flush=True,
        )
        self._spawn(slot)
        return True
