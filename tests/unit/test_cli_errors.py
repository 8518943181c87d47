"""Mistakes about where output goes, which month, which threshold: one line and an exit code.

Exit status 2 for a mistake on the command line or in the configuration, 1 for an output the
operating system refuses to take (SPEC §5); never a traceback.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.cli import Output, run_cli, run_command

# A caller key secret is configured, so that the one warning without one is not in the way.
ENV = {**os.environ, "PYTHONWARNINGS": "ignore", "HOTLINE_KPI_CALLER_KEY": "test secret"}


def run(
    *args: str, cwd: Path, stdout: Output = subprocess.PIPE
) -> subprocess.CompletedProcess[str]:
    return run_cli(*args, cwd=cwd, env=ENV, stdout=stdout)


def assert_one_line(result: subprocess.CompletedProcess[str], status: int, *words: str) -> None:
    lines = result.stderr.strip().splitlines()
    assert "Traceback" not in result.stderr, result.stderr
    assert len(lines) == 1, result.stderr
    assert result.returncode == status, result.stderr
    for word in words:
        assert word in lines[0], lines[0]


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small store with one simulated day of October 2026."""
    where = tmp_path_factory.mktemp("store")
    for args in (
        ("simulate", "--start", "2026-10-01", "--days", "1", "--calls-per-day", "200"),
        ("replay", "events.jsonl", "--store", "kpi.db"),
    ):
        # v1: today's pipeline knows only the v1 event types, and a reject is a log line
        extra = ("--output", "events.jsonl", "--event-model", "v1") if args[0] == "simulate" else ()
        result = run(*args, *extra, cwd=where)
        assert result.returncode == 0, result.stderr
    return where / "kpi.db"


def export(store: Path, *args: str) -> tuple[str, ...]:
    return ("export", "--month", "2026-10", "--store", str(store), *args)


SIMULATE = ("simulate", "--start", "2026-10-01", "--days", "0.05", "--calls-per-day", "200")


@pytest.mark.parametrize("command", ["export", "rules", "simulate", "simulate-truth"], ids=str)
def test_output_to_an_existing_directory_is_a_usage_error(
    command: str, store: Path, tmp_path: Path
) -> None:
    (tmp_path / "reports").mkdir()
    args = {
        "export": export(store, "--output", "reports"),
        "rules": ("rules", "--output", "reports"),
        "simulate": (*SIMULATE, "--output", "reports"),
        "simulate-truth": (*SIMULATE, "--output", "x.jsonl", "--truth", "reports"),
    }[command]
    assert_one_line(run(*args, cwd=tmp_path), 2, "reports", "directory")


@pytest.mark.parametrize("command", ["export", "rules", "simulate", "dashboards"], ids=str)
def test_an_empty_output_path_is_a_usage_error(command: str, store: Path, tmp_path: Path) -> None:
    args = {
        "export": export(store, "--output", ""),
        "rules": ("rules", "--output", ""),
        "simulate": (*SIMULATE, "--output", ""),
        "dashboards": ("dashboards", "build", "--output", ""),
    }[command]
    assert_one_line(run(*args, cwd=tmp_path), 2, "--output", "empty")


@pytest.mark.parametrize("command", ["export", "simulate", "rules"], ids=str)
def test_a_full_device_is_a_runtime_error_naming_the_path_and_the_reason(
    command: str, store: Path, tmp_path: Path
) -> None:
    args = {
        "export": export(store, "--output", "/dev/full"),
        "simulate": (*SIMULATE, "--output", "/dev/full"),
        "rules": ("rules", "--output", "/dev/full"),
    }[command]
    assert_one_line(run(*args, cwd=tmp_path), 1, "/dev/full", "No space left on device")


def test_a_path_the_system_refuses_is_a_runtime_error(store: Path, tmp_path: Path) -> None:
    # /sys refuses new files even to root, like a read-only directory to anyone else.
    assert_one_line(
        run(*export(store, "--output", "/sys/kpi.json"), cwd=tmp_path),
        1,
        "/sys/kpi.json",
        "Permission denied",
    )


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write into a read-only directory")
def test_a_read_only_directory_is_a_runtime_error(store: Path, tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o555)
    result = run(*export(store, "--output", "locked/kpi.json"), cwd=tmp_path)
    assert_one_line(result, 1, "locked/kpi.json", "Permission denied")


@pytest.mark.parametrize(
    "args",
    [
        ("export", "--month", "2026-10", "--format", "csv"),
        ("rules",),
        SIMULATE,
        ("staffing", "--month", "2026-10"),
        ("replay", "events.jsonl"),
    ],
    ids=lambda args: args[0],
)
def test_a_full_standard_output_is_a_runtime_error(
    args: tuple[str, ...], store: Path, tmp_path: Path
) -> None:
    if args[0] in ("export", "staffing"):
        args = (*args, "--store", str(store))
    if args[0] == "replay":
        (tmp_path / "events.jsonl").write_bytes((store.parent / "events.jsonl").read_bytes())
        args = (*args, "--store", "fresh.db")
    with open("/dev/full", "w") as full:
        result = run(*args, cwd=tmp_path, stdout=full)
    assert_one_line(result, 1, "standard output", "No space left on device")


@pytest.mark.parametrize("command", ["export", "staffing", "simulate"], ids=str)
@pytest.mark.parametrize("month", ["9999-12", "0001-01", "0000-05", "1969-12"])
def test_a_month_whose_neighbours_a_date_cannot_hold_names_what_was_typed(
    command: str, month: str, store: Path, tmp_path: Path
) -> None:
    args = {
        "export": export(store, "--output", "x.json"),
        "staffing": ("staffing", "--month", "2026-10", "--store", str(store)),
        "simulate": ("simulate", "--month", "2026-10", "--output", "x.jsonl"),
    }[command]
    args = tuple(month if arg == "2026-10" else arg for arg in args)
    assert_one_line(run(*args, cwd=tmp_path), 2, month, "--month")


@pytest.mark.parametrize("month", ["1970-01", "9999-11"])
@pytest.mark.parametrize("fmt", ["json", "csv", "html"])
def test_the_first_and_last_months_a_date_can_hold_export(
    month: str, fmt: str, store: Path, tmp_path: Path
) -> None:
    result = run(
        "export",
        "--month",
        month,
        "--store",
        str(store),
        "--format",
        fmt,
        "--output",
        "x",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("days", ["inf", "nan", "-1", "1e300"])
def test_simulated_days_must_be_a_finite_positive_number_a_date_can_hold(
    days: str, tmp_path: Path
) -> None:
    result = run("simulate", "--start", "2026-10-01", "--days", days, "--output", "x", cwd=tmp_path)
    assert_one_line(result, 2, "--days")


@pytest.mark.parametrize("start", ["9999-12-31", "0001-01-01"])
def test_a_simulated_window_a_date_cannot_hold_is_a_usage_error(start: str, tmp_path: Path) -> None:
    result = run("simulate", "--start", start, "--days", "1", "--output", "x", cwd=tmp_path)
    assert_one_line(result, 2, start)


@pytest.mark.parametrize("key", ["short_abandon_seconds", "service_level_seconds"])
@pytest.mark.parametrize("value", [".inf", ".nan", "1e300", "-1"])
def test_a_threshold_must_be_finite_and_sane(
    key: str, value: str, store: Path, tmp_path: Path
) -> None:
    (tmp_path / "c.yaml").write_text(f"thresholds: {{{key}: {value}}}\n")
    result = run(
        "replay",
        str(store.parent / "events.jsonl"),
        "--store",
        "t.db",
        "--config",
        "c.yaml",
        cwd=tmp_path,
    )
    assert_one_line(result, 2, "c.yaml", f"thresholds.{key}")


@pytest.mark.parametrize(
    "args",
    [
        ("demo", "--speed", "nan"),
        ("demo", "--speed", "inf"),
        ("demo", "--duration", "-1"),
        ("demo", "--duration", "nan"),
        ("demo", "--calls-per-day", "0"),
        ("simulate", "--start", "2026-10-01", "--days", "inf"),
        ("simulate", "--start", "2026-10-01", "--calls-per-day", "2.5"),
        # Enough agents for this many calls would fill memory before anything is written.
        ("simulate", "--start", "2026-10-01", "--calls-per-day", "100000000000000000000"),
    ],
    ids=lambda args: "-".join(args[-2:]),
)
def test_a_number_the_simulation_cannot_run_with_is_a_usage_error(
    args: tuple[str, ...], tmp_path: Path
) -> None:
    extra = ("--headless", "--metrics-port", "0", "--store", "d.db") if args[0] == "demo" else ()
    assert_one_line(run(*args, *extra, cwd=tmp_path), 2, args[-2], repr(args[-1]))


@pytest.mark.parametrize(
    "window",
    [("--start", "2026-10-05"), ("--days", "1"), ("--start", "2026-10-05", "--days", "1")],
    ids=lambda window: "-".join(window[::2]),
)
def test_a_month_and_a_start_or_days_cannot_be_combined(
    window: tuple[str, ...], tmp_path: Path
) -> None:
    result = run("simulate", "--month", "2026-10", *window, "--output", "x", cwd=tmp_path)
    assert_one_line(result, 2, "--month", window[0])
    assert not (tmp_path / "x").exists()


def test_a_start_alone_simulates_one_day(tmp_path: Path) -> None:
    for args in (("--start", "2026-10-05"), ("--start", "2026-10-05", "--days", "1")):
        result = run("simulate", *args, "--calls-per-day", "50", "--output", "-", cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        assert (
            result.stdout
            == run(
                "simulate",
                "--start",
                "2026-10-05",
                "--days",
                "1",
                "--calls-per-day",
                "50",
                cwd=tmp_path,
            ).stdout
        )


@pytest.fixture(scope="module")
def day_lines(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    where = tmp_path_factory.mktemp("day")
    day = ("--start", "2026-10-05", "--days", "0.02", "--event-model", "v1")  # today's types
    result = run("simulate", *day, "--output", "d.jsonl", cwd=where)
    assert result.returncode == 0, result.stderr
    return (where / "d.jsonl").read_bytes()


def test_a_pipe_is_replayed_whole_as_a_stream(day_lines: bytes, tmp_path: Path) -> None:
    (tmp_path / "d.jsonl").write_bytes(day_lines)
    replay = f"{shlex.quote(sys.executable)} -m hotline_kpi.cli replay <(cat d.jsonl) --store s.db"
    lines = day_lines.count(b"\n")
    for accepted in (lines, 0):  # read whole again: every event a duplicate the second time
        result = run_command(["bash", "-c", replay], cwd=tmp_path, env=ENV)
        assert result.returncode == 0, result.stderr
        assert result.stdout.startswith(f"accepted {accepted} events"), result.stdout


@pytest.mark.parametrize(
    ("target", "words"),
    [
        (".", ["is a directory", "- to read standard input"]),
        ("missing.jsonl", ["no such file: missing.jsonl"]),
    ],
)
def test_replaying_what_is_not_a_file_says_what_it_is(
    target: str, words: list[str], tmp_path: Path
) -> None:
    assert_one_line(run("replay", target, "--store", "s.db", cwd=tmp_path), 2, *words)


def test_replaying_dev_null_reads_nothing(tmp_path: Path) -> None:
    result = run("replay", os.devnull, "--store", "s.db", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("accepted 0 events, rejected 0")
