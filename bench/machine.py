"""The machine and software a run was measured on, and how loaded the machine was."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import re
import subprocess
from pathlib import Path
from typing import Any

from bench.process import REPO

PACKAGES = (
    "pydantic",
    "pydantic-core",
    "orjson",
    "msgspec",
    "kafka-python",
    "crc32c",
    "confluent-kafka",
    "prometheus-client",
    "openpyxl",
    "pyinstrument",
)


def _cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def _ram_gib() -> float:
    match = re.search(r"MemTotal:\s+(\d+) kB", Path("/proc/meminfo").read_text())
    return int(match.group(1)) / 1024 / 1024 if match else 0.0


def _version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def _command_line(command: list[str]) -> str | None:
    try:
        done = subprocess.run(command, capture_output=True, text=True, check=False, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return None
    text = (done.stdout or done.stderr).strip().splitlines()
    return text[0] if text else None


def quix_python(data: Path) -> Path:
    """The interpreter of the separate venv that holds Quix Streams (it pins pydantic<2.14)."""
    return data / "quix-venv" / "bin" / "python"


def load() -> dict[str, float]:
    """Load averages (1, 5, 15 min): above ~0.3 before a measurement, someone else is busy."""
    one, five, fifteen = os.getloadavg()
    return {"load1": round(one, 2), "load5": round(five, 2), "load15": round(fifteen, 2)}


def describe(data: Path) -> dict[str, Any]:
    """CPU, cores, RAM, OS, Python, the project's commit and the versions that matter."""
    pom = (REPO / "scripts" / "kafka" / "pom.xml").read_text()
    kafka = re.search(r"<kafka.version>(.*?)</kafka.version>", pom)
    quix = quix_python(data)
    commit = _command_line(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"])
    dirty = _command_line(
        ["git", "-C", str(REPO), "status", "--porcelain", "--", "hotline_kpi", "ingest", "metrics"]
    )
    return {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "ram_gib": round(_ram_gib(), 1),
        "os": platform.platform(),
        "python": platform.python_version(),
        "hotline_kpi_commit": f"{commit}{' (+ uncommitted changes)' if dirty else ''}",
        "kafka_broker": kafka.group(1) if kafka else None,
        "java": _command_line(["java", "-version"]),
        "sqlite": __import__("sqlite3").sqlite_version,
        "packages": {name: _version(name) for name in PACKAGES},
        "quixstreams": _command_line(
            [str(quix), "-c", "import quixstreams; print(quixstreams.__version__)"]
        )
        if quix.exists()
        else None,
        "load_at_start": load(),
    }


def render(machine: dict[str, Any]) -> str:
    """The description as a few lines of text."""
    packages = ", ".join(f"{k} {v}" for k, v in machine["packages"].items() if v)
    return "\n".join(
        [
            f"machine: {machine['cpu']}, {machine['cores']} cores, {machine['ram_gib']} GiB RAM, "
            f"{machine['os']}",
            f"python {machine['python']}, sqlite {machine['sqlite']}, "
            f"hotline-kpi {machine['hotline_kpi_commit']}",
            f"kafka broker {machine['kafka_broker']} on {machine['java']}; "
            f"quixstreams {machine['quixstreams']}",
            f"packages: {packages}",
            f"load average at start: {machine['load_at_start']}",
        ]
    )
