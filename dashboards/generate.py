"""``hotline-kpi dashboards build|push``: the Grafana dashboards from the settings (issue 5).

Spec → model → output (STYLE.md): the settings give the targets and thresholds,
:mod:`~hotline_kpi.dashboards.model` the KPIs, :mod:`~hotline_kpi.dashboards.boards` lays them out
with Grafana's typed SDK, and this module serialises last. The committed files under
``dashboards/json/`` are this output for the default settings; a golden test keeps them current.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import dashboard as models

from hotline_kpi.config import Settings
from hotline_kpi.dashboards.boards import all_dashboards
from hotline_kpi.dashboards.push import push_dashboards
from hotline_kpi.errors import UsageError

# Where the committed dashboards live, beside this generator.
JSON_DIR = Path(__file__).resolve().parent / "json"


def _number_panels(board: models.Dashboard) -> None:
    # Stable ids in layout order: Grafana keys panel state and links (viewPanel=) on them.
    for index, panel in enumerate(board.panels or [], start=1):
        panel.id_val = index


def build_dashboards(settings: Settings) -> dict[str, dict[str, Any]]:
    """Every dashboard as Grafana dashboard JSON, keyed by uid."""
    result: dict[str, dict[str, Any]] = {}
    for builder in all_dashboards(settings):
        board = builder.build()
        _number_panels(board)
        data: dict[str, Any] = json.loads(json.dumps(board, cls=JSONEncoder))
        if board.uid is None:
            raise AssertionError("every dashboard has a uid")
        result[board.uid] = data
    return result


def render(dashboard: dict[str, Any]) -> str:
    """The dashboard as the committed file's text: stable key order, Chinese kept readable."""
    return json.dumps(dashboard, indent=2, ensure_ascii=False, sort_keys=True) + "\n"


def write_dashboards(settings: Settings, directory: Path) -> list[Path]:
    """Write one ``<uid>.json`` per dashboard into ``directory``; return the paths written."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"cannot create output directory {directory}: {exc.strerror}") from None
    written = []
    for uid, dashboard in build_dashboards(settings).items():
        path = directory / f"{uid}.json"
        try:
            path.write_text(render(dashboard), encoding="utf-8")
        except OSError as exc:
            raise UsageError(f"cannot write {path}: {exc.strerror}") from None
        written.append(path)
    return written


def run_dashboards(
    settings: Settings, args: argparse.Namespace, token: Callable[[], str] | None = None
) -> int:
    """The ``dashboards`` subcommand: ``build`` writes the JSON, ``push`` uploads to Grafana
    with the token that ``token`` resolves (the composition root reads it, when it is needed)."""
    if args.action == "build":
        directory = Path(args.output) if args.output else JSON_DIR
        for path in write_dashboards(settings, directory):
            print(path)
        return 0
    if args.action == "push":
        if not args.grafana_url:
            raise UsageError("dashboards push needs --grafana-url (the Grafana root URL)")
        if token is None:
            raise UsageError("dashboards push needs a Grafana token")
        results = push_dashboards(
            args.grafana_url,
            token(),
            args.folder,
            build_dashboards(settings),
        )
        for result in results:
            print(f"{result.uid}: {result.status} {result.url}")
        return 0
    print(f"hotline-kpi dashboards: unknown action {args.action!r}", file=sys.stderr)
    return 2
