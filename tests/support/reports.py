"""Helpers for the report tests: small simulated stores, and the figures an HTML report shows."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from hotline_kpi.cli import main
from hotline_kpi.config import load_settings
from hotline_kpi.metrics.export import KpiFigures
from hotline_kpi.metrics.store import open_store
from hotline_kpi.reports.labels import Words


def build_store(work: Path) -> Path:
    """Simulate 24 Sep – 3 Nov 2026 and replay it into ``work/s.db`` (in process)."""
    events = work / "events.jsonl"
    store = work / "s.db"
    assert (
        main(
            [
                "simulate",
                "--start",
                "2026-09-24",
                "--days",
                "41",
                "--calls-per-day",
                "150",
                "--seed",
                "11",
                "--event-model",  # the golden reports are of v1 traffic
                "v1",
                "--output",
                str(events),
            ]
        )
        == 0
    )
    assert main(["replay", str(events), "--store", str(store)]) == 0
    return store


def build_october_store(work: Path) -> Path:
    """October 2026 simulated at 60 calls a day (sparse quarter hours, many missing their
    targets) and replayed into ``work/s.db`` (in process): the range reports' store."""
    events, store = work / "events.jsonl", work / "s.db"
    simulate = ["simulate", "--month", "2026-10", "--calls-per-day", "60", "--seed", "5"]
    simulate += ["--event-model", "v1"]  # the golden range reports are of v1 traffic
    assert main([*simulate, "--output", str(events)]) == 0
    assert main(["replay", str(events), "--store", str(store)]) == 0
    return store


@contextmanager
def open_figures(store_path: Path) -> Iterator[KpiFigures]:
    """The figures of the store at ``store_path``, with the default settings; closed after."""
    store = open_store(str(store_path))
    try:
        yield KpiFigures(store, load_settings(None, store=str(store_path)))
    finally:
        store.close()


def replay_events(events: Iterable[dict[str, Any]], store: Path) -> Path:
    """Replay ``events`` (SPEC §2 dicts) into the store ``store`` through the command line."""
    source = store.with_name(store.stem + f"-{sum(1 for _ in store.parent.iterdir())}.jsonl")
    lines = (json.dumps(event, ensure_ascii=False) for event in events)
    source.write_text("".join(text + "\n" for text in lines), encoding="utf-8")
    assert main(["replay", str(source), "--store", str(store)]) == 0
    return store


class HtmlFigures(HTMLParser):
    """Collects (data-src, data-kind, text) of every element that carries a JSON path."""

    def __init__(self) -> None:
        super().__init__()
        self.figures: list[tuple[str, str, str]] = []
        self.untraced = 0  # number cells without a JSON path
        self._open: list[tuple[str, str] | None] = []
        self._text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        numeric = tag == "td" and "num" in (found.get("class") or "").split()
        if numeric and "data-src" not in found:
            self.untraced += 1
        if "data-src" in found:
            self._open.append((found["data-src"] or "", found.get("data-kind") or ""))
            self._text = []
        elif tag in ("td", "div"):
            self._open.append(None)

    def handle_data(self, data: str) -> None:
        self._text.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "div") and self._open:
            item = self._open.pop()
            if item is not None:
                self.figures.append((item[0], item[1], "".join(self._text).strip()))


def resolve(report: dict[str, Any], path: str) -> Any:
    """The JSON value at a ``data-src`` path (agents by id; ``change/KEY`` = month − previous)."""
    parts = path.split("/")
    if parts[0] == "change":
        now = report["overall"][parts[1]]["value"]
        before = report["previous"]["overall"][parts[1]]["value"]
        return None if None in (now, before) else now - before
    node: Any = report
    if parts[0] == "agents":
        node = next(a for a in report["agents"] if a["agent_id"] == parts[1])
        parts = parts[2:]
    for part in parts:
        node = node[int(part)] if isinstance(node, list) else node[part]
    return node


def parse_shown(text: str, kind: str) -> tuple[float, float]:
    """The number a cell shows, and half its last printed unit (the rounding tolerance)."""
    clean = text.replace(",", "").replace(" pp", "").replace(" s", "").replace("%", "")
    if kind in ("seconds",):
        parts = [int(p) for p in clean.split(":")]
        seconds = sum(p * 60**i for i, p in enumerate(reversed(parts)))
        return float(seconds), 0.5
    value = float(clean)
    decimals = len(clean.split(".")[1]) if "." in clean else 0
    half = 0.5 * 10**-decimals
    if kind in ("ratio", "change-ratio", "pp"):
        return value / 100, half / 100
    return value, half


def assert_html_shows_the_json(report: dict[str, Any], html: str, lang: str = "zh") -> int:
    """Every figure of the page ``html`` (its ``data-src`` cells) is the JSON's value, to the
    printed precision; a "none" figure is a JSON null. Returns how many figures there were."""
    parser = HtmlFigures()
    parser.feed(html)
    none = Words(lang)("none")
    for path, kind, text in parser.figures:
        expected = resolve(report, path)
        if text in (none, "–"):
            assert expected is None, path
            continue
        shown, half = parse_shown(text, kind)
        assert shown == pytest.approx(expected, abs=half + 1e-9), (path, text)
    return len(parser.figures)
