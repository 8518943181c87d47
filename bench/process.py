"""Child processes measured from outside: wall time, CPU time and peak RSS (``wait4``)."""

from __future__ import annotations

import os
import subprocess
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
VENV_BIN = REPO / ".venv" / "bin"
HOTLINE = str(VENV_BIN / "hotline-kpi")
PYTHON = str(VENV_BIN / "python")


@dataclass(frozen=True, slots=True)
class ChildRun:
    """What one finished child cost."""

    wall_s: float
    user_s: float
    sys_s: float
    peak_rss_mb: float
    returncode: int
    stdout: str
    stderr: str

    @property
    def cpu_s(self) -> float:
        """User plus system CPU seconds of the child."""
        return self.user_s + self.sys_s


class Child:
    """A running child whose output lines are kept with the moment they arrived."""

    def __init__(self, command: Sequence[str], env: dict[str, str] | None = None) -> None:
        self.command = list(command)
        self.started = time.perf_counter()
        self.popen = subprocess.Popen(
            self.command,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, **(env or {})},
        )
        self.out: list[tuple[float, str]] = []
        self.err: list[tuple[float, str]] = []
        # Peak RSS is sampled from /proc (VmHWM), not taken from wait4's ru_maxrss: on Linux
        # ru_maxrss survives exec, so a child forked from a big parent reports the parent's size.
        self.peak_kib = 0
        self._sampler = threading.Thread(target=self._sample, daemon=True)
        self._sampler.start()
        # Pipes are drained by threads so that a chatty child never blocks on a full pipe.
        self._pumps = [_pump(self.popen.stdout, self.out), _pump(self.popen.stderr, self.err)]

    def _sample(self) -> None:
        while self.popen.returncode is None:
            self._sample_once()
            time.sleep(0.05)

    def _sample_once(self) -> None:
        try:
            text = Path(f"/proc/{self.popen.pid}/status").read_text()
        except OSError:
            return
        for line in text.splitlines():
            if line.startswith("VmHWM:"):
                self.peak_kib = max(self.peak_kib, int(line.split()[1]))

    def first_line(self, needle: str) -> float | None:
        """perf_counter time of the first stdout/stderr line containing ``needle``."""
        for moment, line in [*self.out, *self.err]:
            if needle in line:
                return moment
        return None

    def alive(self) -> bool:
        """Whether the child has not exited yet."""
        return self.popen.poll() is None

    def wait(self, check: bool = True) -> ChildRun:
        """Reap the child and return its costs (rusage of this child only)."""
        # Reading /proc/PID/status keeps working until the child is reaped below.
        os.waitid(os.P_PID, self.popen.pid, os.WEXITED | os.WNOWAIT)
        self._sample_once()
        _, status, usage = os.wait4(self.popen.pid, 0)
        wall = time.perf_counter() - self.started
        self.popen.returncode = os.waitstatus_to_exitcode(status)
        for pump in self._pumps:
            pump.join()
        for stream in (self.popen.stdout, self.popen.stderr):
            if stream is not None:
                stream.close()
        result = ChildRun(
            wall_s=wall,
            user_s=usage.ru_utime,
            sys_s=usage.ru_stime,
            peak_rss_mb=self.peak_kib / 1024,
            returncode=self.popen.returncode,
            stdout="".join(line for _, line in self.out),
            stderr="".join(line for _, line in self.err),
        )
        if check and result.returncode != 0:
            tail = "\n".join(result.stderr.strip().splitlines()[-15:])
            raise RuntimeError(f"{' '.join(self.command[:3])} exited {result.returncode}:\n{tail}")
        return result


def run_child(command: Sequence[str], env: dict[str, str] | None = None) -> ChildRun:
    """Run ``command`` to its end and return its costs; a non-zero exit raises."""
    return Child(command, env).wait()


def _pump(stream: Iterable[str] | None, sink: list[tuple[float, str]]) -> threading.Thread:
    def pump() -> None:
        if stream is None:
            return
        for line in stream:
            sink.append((time.perf_counter(), line))

    thread = threading.Thread(target=pump, daemon=True)
    thread.start()
    return thread


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port
