"""Base class for one backing service running as a child process we own.

Why a hand-rolled wrapper rather than the helpers the wheels ship (e.g.
``pulsar_lite.start_broker``): tests need to stop, SIGKILL and restart services
on the *same* data and ports to simulate outages, the dev CLI needs
deterministic shutdown order, and every failure has to surface with the
service's own log output. So each service:

* runs in its own session (``start_new_session=True``): Ctrl-C in a terminal
  reaches only our parent, which then stops the children in order, instead of
  every child racing to exit on the same SIGINT;
* writes stdout and stderr to ``<data_dir>/<service>.log`` (appended across
  restarts, with a marker line per start) so nothing is lost and the terminal
  stays clean;
* is only ever signalled through its own ``Popen`` object, i.e. by the pid we
  spawned and have not yet reaped, never by name or process group.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shlex
import signal
import subprocess
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, ClassVar, Self

from configsvc.devstack.errors import DevStackError, ServiceStartError
from configsvc.devstack.ports import PortSpec, ensure_port_free

__all__ = ["ManagedProcess"]

_POLL_INTERVAL = 0.05
_TAIL_BYTES = 8192
_TAIL_LINES = 40
_PUMP_JOIN_TIMEOUT = 2.0

# Children that are still running. A plain (strong) set on purpose: if the
# owner forgets to stop a service and drops the object, the atexit hook below
# still stops it rather than leaving an orphaned etcd holding a port.
_live: set[ManagedProcess] = set()
_live_lock = threading.Lock()


@atexit.register
def _stop_leftovers() -> None:
    with _live_lock:
        leftovers = list(_live)
    for proc in leftovers:
        with contextlib.suppress(Exception):
            proc.stop(timeout=5)


class ManagedProcess:
    """One service binary run as a child: start, wait until ready, stop, kill, restart.

    Subclasses provide :meth:`command` and :meth:`is_ready`, and may override
    :meth:`environment`, :meth:`prepare`, :meth:`after_ready`,
    :meth:`port_specs` and :meth:`redact`. The object is reusable: after
    :meth:`stop` or :meth:`kill`, :meth:`start` runs a fresh process on the same
    data directory and ports, which is how tests simulate an outage.
    """

    #: Short name used in messages and for the log file name.
    service: ClassVar[str] = "process"
    #: Route stdout through :meth:`redact` before it reaches the log file
    #: (for binaries that print secrets on stdout, like OpenBao's dev banner).
    redact_stdout: ClassVar[bool] = False

    def __init__(self, data_dir: Path, host: str = "127.0.0.1") -> None:
        self._data_dir = Path(data_dir)
        self._host = host
        self._proc: subprocess.Popen[bytes] | None = None
        self._last_pid: int | None = None
        self._last_returncode: int | None = None
        self._log_offset = 0
        self._pump: threading.Thread | None = None
        self._lock = threading.RLock()
        self._not_ready_reason = ""
        self._started_at = 0.0
        #: Seconds from spawn until the readiness check passed, for the last start.
        self.startup_seconds: float | None = None

    # ----------------------------------------------------------------- hooks

    def command(self) -> list[str]:
        """The argv to execute (the binary path first)."""
        raise NotImplementedError

    def is_ready(self) -> bool:
        """Return True once the service answers real requests.

        Expected "not yet" failures (connection refused, timeouts) must be
        caught and reported via :meth:`_not_ready` rather than raised.
        """
        raise NotImplementedError

    def environment(self) -> dict[str, str]:
        """Environment for the child; defaults to ours."""
        return dict(os.environ)

    def prepare(self) -> None:
        """Create files the binary needs before it starts (config files etc.)."""

    def after_ready(self) -> None:
        """One-off setup once ready (e.g. enabling a secrets engine)."""

    def port_specs(self) -> Sequence[PortSpec]:
        """Ports this service listens on; checked to be free before spawning."""
        return ()

    def redact(self, line: bytes) -> bytes:
        """Rewrite one stdout line before it is logged (only if ``redact_stdout``)."""
        return line

    # ------------------------------------------------------------ properties

    @property
    def data_dir(self) -> Path:
        """Directory owned by this service: its log and (if any) persistent state."""
        return self._data_dir

    @property
    def host(self) -> str:
        """Address the service listens on."""
        return self._host

    @property
    def log_path(self) -> Path:
        """File receiving the child's stdout and stderr, appended across restarts."""
        return self._data_dir / f"{self.service}.log"

    @property
    def pid(self) -> int | None:
        """Pid of the running child, or of the last one after it stopped (for tests)."""
        if self._proc is not None:
            return self._proc.pid
        return self._last_pid

    @property
    def running(self) -> bool:
        """True while the child we spawned has not exited."""
        proc = self._proc
        return proc is not None and proc.poll() is None

    @property
    def returncode(self) -> int | None:
        """Exit status of the current or last child; None while it is running."""
        proc = self._proc
        if proc is not None:
            return proc.poll()
        return self._last_returncode

    # ------------------------------------------------------------- lifecycle

    def start(self, timeout: float = 30.0) -> None:
        """Spawn the service and block until it is ready (or raise).

        On any failure, including KeyboardInterrupt while waiting, the child is
        stopped before the exception propagates, so a failed start leaves no
        process behind.
        """
        with self._lock:
            if self.running:
                raise DevStackError(f"{self.service} is already running (pid {self.pid})")
            self._finish()
            for spec in self.port_specs():
                ensure_port_free(self._host, spec.port, spec.what, spec.flag)
            self._spawn()
        try:
            self.wait_ready(timeout)
            self.after_ready()
        except BaseException:
            self.stop()
            raise

    def wait_ready(self, timeout: float) -> None:
        """Poll :meth:`is_ready` until it passes, the child exits, or ``timeout`` elapses.

        If the child exits first we fail immediately instead of waiting out the
        timeout: a crashed service never becomes ready, and the log tail in the
        error usually says why.
        """
        deadline = time.monotonic() + timeout
        while True:
            proc = self._proc
            if proc is None:
                raise DevStackError(f"{self.service} is not running; call start() first")
            returncode = proc.poll()
            if returncode is not None:
                self._join_pump()
                raise ServiceStartError(
                    self.service,
                    f"{self.service} {_describe_exit(returncode)} before it became ready",
                    self.log_path,
                    self.log_tail(),
                )
            if self.is_ready():
                self.startup_seconds = time.monotonic() - self._started_at
                return
            if time.monotonic() >= deadline:
                reason = (
                    f" (last check: {self._not_ready_reason})" if self._not_ready_reason else ""
                )
                raise ServiceStartError(
                    self.service,
                    f"{self.service} (pid {proc.pid}) did not become ready within "
                    f"{timeout:.1f}s{reason}",
                    self.log_path,
                    self.log_tail(),
                )
            time.sleep(_POLL_INTERVAL)

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM the child, SIGKILL it if it is still alive after ``timeout``; reap it.

        Idempotent: stopping a service that was never started, already stopped,
        or died on its own is a no-op (apart from reaping it).
        """
        with self._lock:
            proc = self._proc
            if proc is None:
                return
            if proc.poll() is None:
                # Popen.send_signal() re-checks that the child has not been
                # reaped, so a recycled pid can never be signalled.
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=timeout)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            self._finish()

    def kill(self) -> None:
        """SIGKILL the child and reap it: a crash without any chance to clean up.

        Chaos tests use this to check that clients survive an abrupt outage and
        that the service recovers its state on the next :meth:`start`.
        """
        with self._lock:
            proc = self._proc
            if proc is None:
                return
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            self._finish()

    def log_tail(self, max_lines: int = _TAIL_LINES) -> str:
        """The last lines the child logged since the most recent start."""
        try:
            with self.log_path.open("rb") as log:
                size = log.seek(0, os.SEEK_END)
                begin = max(self._log_offset, size - _TAIL_BYTES)
                log.seek(begin)
                data = log.read()
        except OSError:
            return ""
        lines = data.decode("utf-8", errors="replace").splitlines()
        if begin > self._log_offset and lines:
            lines = lines[1:]  # we started reading mid-line
        return "\n".join(lines[-max_lines:])

    def __enter__(self) -> Self:
        if not self.running:
            self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<{type(self).__name__} {self.service} {state} pid={self.pid}>"

    # -------------------------------------------------------------- internals

    def _not_ready(self, reason: str) -> bool:
        """Record why the last readiness check failed (shown on timeout); return False."""
        self._not_ready_reason = reason
        return False

    def _spawn(self) -> None:
        try:
            self._data_dir.mkdir(parents=True, exist_ok=True)
        except (FileExistsError, NotADirectoryError) as exc:
            raise DevStackError(
                f"data directory {self._data_dir} for {self.service} is not a directory"
            ) from exc
        self.prepare()
        argv = self.command()
        env = self.environment()
        log = self.log_path.open("ab", buffering=0)
        try:
            self._log_offset = log.seek(0, os.SEEK_END)
            stamp = time.strftime("%Y-%m-%dT%H:%M:%S%z")
            log.write(f"=== {stamp} configsvc devstack: {shlex.join(argv)}\n".encode())
            self._log_offset = log.tell()
            self._not_ready_reason = ""
            self.startup_seconds = None
            self._started_at = time.monotonic()
            try:
                proc = subprocess.Popen(
                    argv,
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.PIPE if self.redact_stdout else log,
                    stderr=log,
                    cwd=self._data_dir,
                    env=env,
                    start_new_session=True,
                    close_fds=True,
                )
            except OSError as exc:
                raise DevStackError(f"cannot execute {argv[0]} for {self.service}: {exc}") from exc
        except BaseException:
            log.close()
            raise
        self._proc = proc
        if self.redact_stdout:
            assert proc.stdout is not None
            self._pump = threading.Thread(
                target=self._pump_stdout,
                args=(proc.stdout, log),
                name=f"{self.service}-log",
                daemon=True,
            )
            self._pump.start()
        else:
            log.close()  # the child has its own descriptor
        with _live_lock:
            _live.add(self)

    def _pump_stdout(self, source: IO[bytes], log: IO[bytes]) -> None:
        try:
            for line in iter(source.readline, b""):
                log.write(self.redact(line))
        except (OSError, ValueError):
            pass  # log file or pipe gone: nothing useful left to do
        finally:
            source.close()
            log.close()

    def _join_pump(self) -> None:
        pump = self._pump
        if pump is not None:
            pump.join(_PUMP_JOIN_TIMEOUT)
            if not pump.is_alive():
                self._pump = None

    def _finish(self) -> None:
        """Forget a child that has exited (reaping it) and flush its log pump."""
        proc = self._proc
        if proc is None:
            return
        self._last_returncode = proc.wait()
        self._last_pid = proc.pid
        self._join_pump()
        self._proc = None
        with _live_lock:
            _live.discard(self)


def _describe_exit(returncode: int) -> str:
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        return f"was killed by {name}"
    return f"exited with status {returncode}"
