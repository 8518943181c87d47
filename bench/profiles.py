"""Profiles (pyinstrument) of the replay and ``run`` hot paths, summarised two ways: the
functions with the most self time, and the time of the innermost project function on the stack
(so that library time — pydantic-core, sqlite3, kafka-python — is charged to our caller)."""

from __future__ import annotations

import signal
import time
from collections import Counter
from pathlib import Path
from typing import Any

from pyinstrument.frame import Frame
from pyinstrument.renderers import ConsoleRenderer
from pyinstrument.session import Session

from bench.broker import BenchBroker
from bench.kafka_e2e import _group, stored_positions
from bench.process import PYTHON, REPO, Child, free_port, run_child

PROJECT_DIRS = tuple(str(REPO / name) + "/" for name in ("hotline_kpi", "ingest", "metrics"))


def _profiled(output: Path, *args: str) -> list[str]:
    return [
        PYTHON,
        "-m",
        "pyinstrument",
        "-r",
        "session",
        "-o",
        str(output),
        "-m",
        "hotline_kpi.cli",
        *args,
    ]


def profile_replay(data: Path, path: Path) -> Path:
    """pyinstrument session of ``hotline-kpi replay`` of ``path`` into a new store."""
    store = data / "bench-profile-replay.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{store}{suffix}").unlink(missing_ok=True)
    output = data / "profiles" / "replay.pyisession"
    output.parent.mkdir(parents=True, exist_ok=True)
    run_child(_profiled(output, "replay", str(path), "--store", str(store)))
    return output


def profile_run(data: Path, broker: BenchBroker, topic: str, total: int) -> Path:
    """pyinstrument session of ``hotline-kpi run`` over the whole topic, stopped by SIGTERM."""
    store = data / "bench-profile-run.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{store}{suffix}").unlink(missing_ok=True)
    output = data / "profiles" / "run.pyisession"
    output.parent.mkdir(parents=True, exist_ok=True)
    child = Child(
        _profiled(
            output,
            "run",
            "--bootstrap-servers",
            broker.bootstrap,
            "--topic",
            topic,
            "--group",
            _group("profile"),
            "--store",
            str(store),
            "--metrics-port",
            str(free_port()),
        )
    )
    deadline = time.perf_counter() + 1200
    while child.alive() and time.perf_counter() < deadline:
        if stored_positions(store, f"kafka:{topic}") >= total:
            break
        time.sleep(0.2)
    child.popen.send_signal(signal.SIGTERM)
    child.wait()
    return output


def _project_label(frame: Frame) -> str | None:
    path = frame.file_path or ""
    if path.startswith(PROJECT_DIRS):
        return f"{path.removeprefix(str(REPO) + '/')}:{frame.function}"
    return None


def summarise(session_path: Path, top: int = 15) -> dict[str, Any]:
    """Total time, top self-time functions and time per innermost project function."""
    session = Session.load(str(session_path))
    root = session.root_frame()
    if root is None:
        return {"seconds": 0}
    total = root.time
    self_times: Counter[str] = Counter()
    by_project: Counter[str] = Counter()

    def walk(frame: Frame, owner: str, name: str) -> None:
        label = _project_label(frame) or owner
        if not frame.is_synthetic:
            name = f"{frame.function} ({Path(frame.file_path or '?').name}:{frame.line_no})"
        # pyinstrument keeps a frame's own time in synthetic "[self]" children.
        own = frame.time - sum(child.time for child in frame.children)
        if own > 0:
            self_times[name] += own
            by_project[label] += own
        for child in frame.children:
            walk(child, label, name)

    walk(root, "(outside the project)", "(root)")
    text = ConsoleRenderer(unicode=False, color=False, short_mode=False).render(session)
    session_path.with_suffix(".txt").write_text(text)

    def share(counter: Counter[str]) -> list[dict[str, Any]]:
        return [
            {
                "where": name,
                "seconds": round(seconds, 2),
                "percent": round(100 * seconds / total, 1),
            }
            for name, seconds in counter.most_common(top)
        ]

    return {
        "seconds": round(total, 2),
        "tree": str(session_path.with_suffix(".txt")),
        "top_self_time": share(self_times),
        "by_innermost_project_function": share(by_project),
    }
