"""Running ``hotline-kpi`` (or a shell line) in a child process, as a user would, for the tests
that look at its exit status and what it printed."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, Any

Output = int | IO[Any] | None


def run_command(
    argv: Sequence[str],
    *,
    cwd: Path,
    env: Mapping[str, str] | None = None,
    stdout: Output = subprocess.PIPE,
    timeout: float = 120,
) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` in ``cwd`` (with ``env``, else this process's environment) and collect its
    text output; ``stdout`` may be an open file instead. A non-zero exit is returned, not raised."""
    return subprocess.run(
        list(argv),
        cwd=cwd,
        stdout=stdout,
        stderr=subprocess.PIPE,
        text=True,
        timeout=timeout,
        check=False,
        env=env,
    )


def run_cli(
    *args: str,
    cwd: Path,
    env: Mapping[str, str] | None = None,
    stdout: Output = subprocess.PIPE,
    timeout: float = 120,
) -> subprocess.CompletedProcess[str]:
    """``hotline-kpi <args>`` run by this interpreter, as :func:`run_command` runs it."""
    return run_command(
        [sys.executable, "-m", "hotline_kpi.cli", *args],
        cwd=cwd,
        env=env,
        stdout=stdout,
        timeout=timeout,
    )
