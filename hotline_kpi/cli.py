"""The composition root: ``hotline-kpi <subcommand>`` (SPEC §5).

This module parses the command line, builds the settings once, wires sources, fold, store and
exporter together, and turns domain errors into one-line messages and exit codes. Nothing else
reads the environment or the configuration file.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence
from typing import NoReturn

from hotline_kpi.config import ConfigError, Settings, load_settings
from hotline_kpi.errors import HotlineError, UsageError

log = logging.getLogger("hotline_kpi")

Handler = Callable[[argparse.Namespace, Settings], int]


class _Parser(argparse.ArgumentParser):
    """An argument parser whose usage errors are one line, not a usage block."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _add_common(parser: argparse.ArgumentParser, *, store: bool = True) -> None:
    parser.add_argument("--config", metavar="FILE", help="YAML configuration file")
    if store:
        parser.add_argument("--store", metavar="PATH|URL", help="SQLite file or postgresql:// URL")
    parser.add_argument("-v", "--verbose", action="store_true", help="log more")


def build_parser() -> argparse.ArgumentParser:
    """The whole command line, one subparser per subcommand."""
    parser = _Parser(prog="hotline-kpi", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    demo = sub.add_parser(
        "demo", help="simulated traffic -> pipeline -> SQLite, /metrics, live view"
    )
    _add_common(demo)
    demo.add_argument("--seed", type=int, default=7)
    demo.add_argument("--speed", type=float, default=60.0, help="simulated seconds per second")
    demo.add_argument("--metrics-port", type=int)
    demo.add_argument("--headless", action="store_true", help="no live terminal view")
    demo.add_argument("--duration", type=float, help="stop after this many wall seconds")
    demo.add_argument(
        "--scenario",
        choices=["normal", "understaffed"],
        default="normal",
        help="'understaffed' makes the manual connection rate breach its target",
    )
    demo.add_argument("--calls-per-day", type=int, default=20_000)
    demo.set_defaults(handler=_cmd_demo)

    run = sub.add_parser("run", help="the long-running Kafka consumer")
    _add_common(run)
    run.add_argument("--bootstrap-servers")
    run.add_argument("--topic")
    run.add_argument("--group")
    run.add_argument("--metrics-port", type=int)
    run.add_argument("--dead-letter-topic")
    run.set_defaults(handler=_cmd_run)

    replay = sub.add_parser("replay", help="feed a JSONL file through the pipeline into a store")
    _add_common(replay)
    replay.add_argument("file", metavar="FILE|-")
    replay.add_argument(
        "--from-start",
        action="store_true",
        help="read the whole file even if the store has a position in it",
    )
    replay.add_argument("--batch-size", type=int, default=10_000)
    replay.set_defaults(handler=_cmd_replay)

    export = sub.add_parser("export", help="the monthly KPI report from a store")
    _add_common(export)
    export.add_argument("--month", required=True, metavar="YYYY-MM")
    export.add_argument("--format", default="json", choices=["json", "csv", "xlsx", "html", "pdf"])
    export.add_argument("--output", default="-", metavar="PATH|-")
    export.add_argument("--lang", default="zh", choices=["zh", "en"])
    export.set_defaults(handler=_cmd_export)

    rules = sub.add_parser("rules", help="write the Prometheus recording and alerting rules")
    _add_common(rules, store=False)
    rules.add_argument("--output", default="-", metavar="PATH|-")
    rules.set_defaults(handler=_cmd_rules)

    dashboards = sub.add_parser("dashboards", help="build or push the Grafana dashboards")
    _add_common(dashboards, store=False)
    dashboards.add_argument("action", choices=["build", "push"])
    dashboards.add_argument("--output", metavar="DIR", help="where `build` writes the JSON")
    dashboards.add_argument("--grafana-url", help="Grafana base URL for `push`")
    dashboards.add_argument("--folder", default="hotline-kpi", help="folder uid for `push`")
    dashboards.set_defaults(handler=_cmd_dashboards)

    simulate = sub.add_parser("simulate", help="realistic synthetic traffic to a file or Kafka")
    _add_common(simulate, store=False)
    simulate.add_argument("--month", metavar="YYYY-MM", help="simulate this whole month")
    simulate.add_argument("--start", metavar="YYYY-MM-DD", help="first local day")
    simulate.add_argument("--days", type=float, default=1.0, help="days from --start")
    simulate.add_argument("--seed", type=int, default=1)
    simulate.add_argument("--calls-per-day", type=int, default=20_000)
    simulate.add_argument("--scenario", choices=["normal", "understaffed"], default="normal")
    simulate.add_argument("--duplicates", type=float, default=0.0, help="share re-sent")
    simulate.add_argument("--shuffle", action="store_true", help="shuffle each call's events")
    simulate.add_argument("--bad", type=float, default=0.0, help="share of malformed lines")
    simulate.add_argument("--output", default="-", metavar="PATH|-")
    simulate.add_argument("--truth", metavar="PATH", help="write the ground-truth KPIs here")
    simulate.add_argument("--to", choices=["file", "kafka"], default="file")
    simulate.add_argument("--bootstrap-servers")
    simulate.add_argument("--topic")
    simulate.set_defaults(handler=_cmd_simulate)

    staffing = sub.add_parser("staffing", help="agents each queue needs per interval (Erlang A)")
    _add_common(staffing)
    staffing.add_argument("--month", required=True, metavar="YYYY-MM")
    staffing.add_argument("--queue", help="only this queue")
    staffing.add_argument("--format", default="table", choices=["table", "csv", "json"])
    staffing.add_argument(
        "--view",
        default="intervals",
        choices=["intervals", "hour_weekday"],
        help="per interval of the day, or per hour x weekday",
    )
    staffing.add_argument(
        "--backtest",
        action="store_true",
        help="compare the model with what happened, with the agents observed",
    )
    staffing.set_defaults(handler=_cmd_staffing)

    return parser


# Command-line options that override a nested setting: option dest -> (section, key).
_NESTED_OPTIONS = {
    "metrics_port": ("metrics", "port"),
    "bootstrap_servers": ("kafka", "bootstrap_servers"),
    "topic": ("kafka", "topic"),
    "group": ("kafka", "group"),
    "dead_letter_topic": ("kafka", "dead_letter_topic"),
}


def _settings_for(args: argparse.Namespace) -> Settings:
    """Settings from the file and environment, with the options given on the command line on
    top (pydantic-settings merges nested sections, so a lone ``--topic`` keeps the rest)."""
    overrides: dict[str, object] = {}
    if getattr(args, "store", None):
        overrides["store"] = args.store
    for dest, (section, key) in _NESTED_OPTIONS.items():
        value = getattr(args, dest, None)
        if value is not None:
            nested = overrides.setdefault(section, {})
            assert isinstance(nested, dict)
            nested[key] = value
    return load_settings(args.config, **overrides)


def _cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    from hotline_kpi.demo import run_demo

    return run_demo(settings, args)


def _cmd_run(args: argparse.Namespace, settings: Settings) -> int:
    from hotline_kpi.ingest.kafka import run_consumer

    return run_consumer(settings, args)


def _cmd_replay(args: argparse.Namespace, settings: Settings) -> int:
    from hotline_kpi.replay import run_replay

    return run_replay(settings, args)


def _cmd_export(args: argparse.Namespace, settings: Settings) -> int:
    from hotline_kpi.metrics.export import run_export

    return run_export(settings, args)


def _cmd_rules(args: argparse.Namespace, settings: Settings) -> int:
    from hotline_kpi.alerts.generate import run_rules

    return run_rules(settings, args)


def _cmd_dashboards(args: argparse.Namespace, settings: Settings) -> int:
    from hotline_kpi.dashboards.generate import run_dashboards

    return run_dashboards(settings, args)


def _cmd_simulate(args: argparse.Namespace, settings: Settings) -> int:
    from hotline_kpi.simulate import run_simulate

    return run_simulate(settings, args)


def _cmd_staffing(args: argparse.Namespace, settings: Settings) -> int:
    from hotline_kpi.staffing import run_staffing

    return run_staffing(settings, args)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``hotline-kpi`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    prog = f"hotline-kpi {args.command}"
    try:
        settings = _settings_for(args)
        handler: Handler = args.handler
        return handler(args, settings)
    except (ConfigError, HotlineError) as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2 if isinstance(exc, ConfigError | UsageError) else 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
