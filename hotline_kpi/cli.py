"""The composition root: ``hotline-kpi <subcommand>``.

This module parses the command line, builds the settings once, resolves the secrets
(``hotline_kpi.config``), wires each command's source, live pipeline (store, metrics, ``/metrics``)
and outputs together, and turns domain errors into one-line messages and exit codes. Nothing else
reads the environment or the configuration file.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import re
import secrets
import signal
import stat
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any, BinaryIO, NoReturn, TextIO, cast

from hotline_kpi.config import (
    ConfigError,
    Settings,
    caller_key_secret,
    grafana_token,
    kafka_credentials,
    load_settings,
    metrics_basic_auth,
    redacted_store,
    store_passwords,
)
from hotline_kpi.errors import HotlineError, OutputError, SourceError, UsageError
from hotline_kpi.ingest.callers import CallerKeys
from hotline_kpi.ingest.converters import FORMATS

if TYPE_CHECKING:
    from hotline_kpi.metrics.store import SqlStore
    from hotline_kpi.replay import Fingerprint

log = logging.getLogger("hotline_kpi")


def demo_caller_keys(store: str) -> CallerKeys:
    """The demo's caller keys when no secret is configured: its traffic is simulated, so there is
    no real number to protect, but its repeat figures need keys. A random secret is kept next to
    a SQLite store (``<store>.demo-caller-key``, readable by its owner only) so that a restarted
    demo links to the contacts of the last run; a PostgreSQL store gets one for this run only."""
    if "://" in store:
        return CallerKeys(secrets.token_bytes(32))
    path = Path(store + ".demo-caller-key")
    try:
        secret = path.read_bytes()
    except FileNotFoundError:
        secret = secrets.token_bytes(32)
        try:
            with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as out:
                out.write(secret)
        except OSError:
            pass  # a read-only directory: a secret for this run only
    except OSError:
        secret = b""
    return CallerKeys(secret or secrets.token_bytes(32))


def caller_keys(settings: Settings) -> CallerKeys | None:
    """The caller keyer of SPEC §7 from the configured secret, or None without one."""
    secret = caller_key_secret(settings)
    return CallerKeys(secret) if secret is not None else None


Handler = Callable[[argparse.Namespace, Settings], int]


class _Parser(argparse.ArgumentParser):
    """An argument parser whose usage errors are one line, not a usage block."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


# How many days ``simulate --start`` covers without --days.
DEFAULT_DAYS = 1.0

# Simulated traffic beyond this would need more agents than memory holds (staffing per hour).
MAX_CALLS_PER_DAY = 1_000_000


def _positive_number(text: str) -> float:
    """An argparse type: a finite number above zero (``nan`` or ``inf`` is a usage error)."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text!r}")
    return value


def _calls_per_day(text: str) -> int:
    """An argparse type: a whole number of calls a day, 1 to :data:`MAX_CALLS_PER_DAY`."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if not 1 <= value <= MAX_CALLS_PER_DAY:
        raise argparse.ArgumentTypeError(
            f"must be a whole number from 1 to {MAX_CALLS_PER_DAY:,}, got {text!r}"
        )
    return value


def _add_common(parser: argparse.ArgumentParser, *, store: bool = True) -> None:
    parser.add_argument("--config", metavar="FILE", help="YAML configuration file")
    if store:
        parser.add_argument("--store", metavar="PATH|URL", help="SQLite file or postgresql:// URL")
    parser.add_argument("-v", "--verbose", action="store_true", help="log more")


DESCRIPTION = (
    "Exact KPIs of a customer-service hotline from its call, ticket, review and survey events: "
    "consume them from Kafka, a file or a simulator into a store, serve them to Prometheus, "
    "and export monthly reports, alerting rules and Grafana dashboards."
)


def _add_traffic(parser: argparse.ArgumentParser, *, seed: int) -> None:
    """The simulated hotline's options, shared by ``demo`` and ``simulate``."""
    parser.add_argument("--seed", type=int, default=seed)
    parser.add_argument("--calls-per-day", type=_calls_per_day, default=20_000)
    parser.add_argument(
        "--scenario",
        choices=["normal", "understaffed", "repeat-spike"],
        default="normal",
        help="'understaffed' makes the manual connection rate breach its target; "
        "'repeat-spike' (v2 events) has repeat and blocked calls spike",
    )


def build_parser() -> argparse.ArgumentParser:
    """The whole command line, one subparser per subcommand."""
    parser = _Parser(prog="hotline-kpi", description=DESCRIPTION)
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    demo = sub.add_parser(
        "demo", help="simulated traffic -> pipeline -> SQLite, /metrics, live view"
    )
    _add_common(demo)
    _add_traffic(demo, seed=7)
    demo.add_argument(
        "--speed", type=_positive_number, default=60.0, help="simulated seconds per second"
    )
    demo.add_argument("--metrics-port", type=int)
    demo.add_argument("--headless", action="store_true", help="no live terminal view")
    demo.add_argument("--duration", type=_positive_number, help="stop after this many wall seconds")
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
    replay.add_argument(
        "file",
        metavar="FILE|-",
        help="a JSONL file (resumed where the store left it), - for standard input, or a pipe "
        "such as <(zcat f.gz), read whole each time",
    )
    replay.add_argument(
        "--from-start",
        action="store_true",
        help="read the whole file even if the store has a position in it",
    )
    replay.add_argument("--batch-size", type=int, default=10_000)
    replay.add_argument(
        "--format",
        choices=FORMATS,
        help="a telephony log instead of hotline events: asterisk-queue-log (a queue_log file), "
        "freeswitch-cdr (mod_json_cdr CDRs, one per line, or a directory of *.json files)",
    )
    replay.set_defaults(handler=_cmd_replay)

    convert = sub.add_parser(
        "convert", help="write the events a telephony log becomes, as JSONL (no store)"
    )
    _add_common(convert)
    convert.add_argument("file", metavar="FILE|-", help="the log, or - for standard input")
    convert.add_argument("--format", choices=FORMATS, required=True)
    convert.add_argument("--output", metavar="PATH|-", default="-")
    convert.set_defaults(handler=_cmd_convert)

    export = sub.add_parser(
        "export", help="the KPI report of a month or of a range of days, from a store"
    )
    _add_common(export)
    export.add_argument("--month", metavar="YYYY-MM", help="one calendar month")
    export.add_argument(
        "--from",
        dest="start",
        metavar="YYYY-MM-DD",
        help="first local day of a range (or today, yesterday)",
    )
    export.add_argument(
        "--to",
        dest="end",
        metavar="YYYY-MM-DD",
        help="last local day of the range, inclusive (or today, yesterday)",
    )
    export.add_argument(
        "--by",
        choices=["day", "hour", "interval"],
        help="the range's periods (default day; interval: interval_minutes of the config)",
    )
    export.add_argument("--queue", metavar="QUEUE", help="limit every scope to this queue")
    export.add_argument("--format", default="json", choices=["json", "csv", "xlsx", "html", "pdf"])
    export.add_argument("--output", default="-", metavar="PATH|-")
    export.add_argument("--lang", default="zh", choices=["zh", "en"])
    export.set_defaults(handler=_cmd_export)

    verify = sub.add_parser(
        "verify",
        help="recompute the store's interval rollups from its facts and compare (exit 1 if not "
        "equal)",
    )
    _add_common(verify)
    verify.add_argument(
        "--rebuild",
        action="store_true",
        help="rebuild the rollups for this configuration first if they were built for another",
    )
    verify.set_defaults(handler=_cmd_verify)

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
    simulate.add_argument(
        "--month", metavar="YYYY-MM", help="simulate this whole month (not with --start, --days)"
    )
    simulate.add_argument("--start", metavar="YYYY-MM-DD", help="first local day")
    simulate.add_argument(
        "--days", type=_positive_number, help=f"days from --start (default {DEFAULT_DAYS:g})"
    )
    _add_traffic(simulate, seed=1)
    simulate.add_argument("--duplicates", type=float, default=0.0, help="share re-sent")
    simulate.add_argument("--shuffle", action="store_true", help="shuffle each call's events")
    simulate.add_argument("--bad", type=float, default=0.0, help="share of malformed lines")
    simulate.add_argument(
        "--event-model",
        choices=["v1", "v2"],
        default="v2",
        help="v1: only the event types of before (calls of one leg, no agent states)",
    )
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
    staffing.add_argument(
        "--wide", action="store_true", help="table: every column, wider than 80 if need be"
    )
    staffing.set_defaults(handler=_cmd_staffing)
    _add_ship(sub)

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


def _stop_on_sigterm(*signums: int) -> tuple[threading.Event, Callable[[], None]]:
    """An event set by each of ``signums`` (a clean stop), and how to put the old handlers back."""
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {signum: signal.signal(signum, on_signal) for signum in signums}

    def restore() -> None:
        for signum, handler in previous.items():
            signal.signal(signum, handler)

    return stop, restore


def _cmd_run(args: argparse.Namespace, settings: Settings) -> int:
    """Consume the topic until SIGTERM or Ctrl-C, then stop cleanly."""
    from hotline_kpi.ingest.confluent import ConfluentKafkaSource, consumer_config
    from hotline_kpi.ingest.dead_letters import DeadLetterPublisher
    from hotline_kpi.ingest.kafka import KafkaSource, client_config
    from hotline_kpi.live import consume, open_live

    kafka = settings.kafka
    credentials = kafka_credentials(kafka)
    client = client_config(kafka, credentials)
    live = open_live(
        settings,
        basic_auth=metrics_basic_auth(settings.metrics),
        caller_keys=caller_keys(settings),
    )
    assert live.metrics is not None and live.server is not None
    # Installed before connecting, so that a SIGTERM during start-up is a clean stop too.
    stop, restore = _stop_on_sigterm(signal.SIGTERM, signal.SIGINT)
    source: KafkaSource | ConfluentKafkaSource | None = None
    dead_letters: DeadLetterPublisher | None = None
    totals = None
    try:
        with _kafka_connecting(verbose=args.verbose):
            if kafka.client == "confluent-kafka":
                config = consumer_config(kafka, credentials)
                source = ConfluentKafkaSource(
                    kafka, config, live.store.positions, lag=live.metrics.lag, stop=stop
                )
            else:
                source = KafkaSource(
                    kafka, client, live.store.positions, lag=live.metrics.lag, stop=stop
                )
            if kafka.dead_letter_topic:
                dead_letters = DeadLetterPublisher(
                    kafka.dead_letter_topic, live.store, live.metrics.registry, client
                )
        log.info(
            "consuming %s from %s as group %s into %s; metrics on %s:%d",
            kafka.topic,
            kafka.bootstrap_servers,
            kafka.group,
            redacted_store(settings.store),
            settings.metrics.address,
            live.server.port,
        )
        flush = None if dead_letters is None else (lambda _: dead_letters.flush())
        totals = consume(live.pipeline, source, stop, between=flush)
    finally:
        if source is not None:
            source.close()
        if dead_letters is not None:
            dead_letters.close()
        if totals is not None:
            log.info("stopped: accepted %d, rejected %d", totals.accepted, totals.total_rejected)
        live.close()
        restore()
    return 0


def _cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    """Run the demo until Ctrl-C (or ``--duration`` seconds)."""
    from rich.console import Console
    from rich.live import Live

    from hotline_kpi.demo import END_OF_TIME_US, KpiView, simulated_today
    from hotline_kpi.live import consume, open_live
    from hotline_kpi.metrics.export import KpiFigures
    from hotline_kpi.pipeline import Totals

    keys = caller_keys(settings) or demo_caller_keys(settings.store)
    live = open_live(settings, basic_auth=metrics_basic_auth(settings.metrics), caller_keys=keys)
    assert live.url is not None
    pipeline = live.pipeline
    day, source = simulated_today(
        settings,
        pipeline.watermark,
        seed=args.seed,
        scenario=args.scenario,
        calls_per_day=args.calls_per_day,
        speed=args.speed,
    )
    stop, restore = _stop_on_sigterm(signal.SIGTERM)
    console = Console(stderr=True)
    terminal = None if args.headless else Live(console=console, refresh_per_second=2)
    view = KpiView(
        KpiFigures(live.store, settings),
        settings,
        day,
        live.url,
        terminal,
        lambda: pipeline.watermark,
        lambda: live.store.state_changes(END_OF_TIME_US, END_OF_TIME_US),
    )
    started = time.monotonic()

    def between(totals: Totals) -> None:
        view.refresh(totals)
        if args.duration is not None and time.monotonic() - started >= args.duration:
            stop.set()

    log.info("demo: store %s, metrics on %s", redacted_store(settings.store), live.url)
    totals = Totals()
    try:
        if terminal is not None:
            terminal.start()
        totals = consume(pipeline, source, stop, between, totals=totals)
    except KeyboardInterrupt:
        pass
    finally:
        if terminal is not None:
            terminal.stop()
        restore()
        live.close()
    console.print(f"demo stopped: accepted {totals.accepted}, rejected {totals.total_rejected}")
    return 0


def _cmd_replay(args: argparse.Namespace, settings: Settings) -> int:
    """Replay a file (or stdin) into the configured store and print what it counted."""
    from hotline_kpi.live import consume, open_live
    from hotline_kpi.replay import FileSource, summary

    if args.batch_size <= 0:
        raise UsageError("--batch-size must be positive")
    if args.format is not None:
        return _replay_log(args, settings)
    kind = _replayed(args.file)
    path = Path(args.file)
    live = open_live(settings, serve_metrics=False, caller_keys=caller_keys(settings))
    try:
        if kind == "stdin":
            totals = consume(
                live.pipeline, FileSource(sys.stdin.buffer, "stdin", 0, args.batch_size)
            )
        elif kind == "stream":
            # A pipe or a device has no identity to resume by: read it whole, as stdin is.
            with _open_replayed(path) as stream:
                source = FileSource(stream, f"stream:{args.file}", 0, args.batch_size)
                totals = consume(live.pipeline, source)
        else:
            name = f"file:{path.resolve()}"
            with _open_replayed(path) as stream:
                start, fingerprint, why = _resume_point(live.store, name, stream, args.from_start)
                if why is not None:
                    print(
                        f"hotline-kpi replay: notice: {args.file}: {why}; reading it again "
                        "from the start (events already stored count as duplicates)",
                        file=sys.stderr,
                    )
                source = FileSource(stream, name, start, args.batch_size, fingerprint)
                totals = consume(live.pipeline, source)
    finally:
        live.close()
    print(summary(totals))
    return 0


def _resume_point(
    store: SqlStore, name: str, stream: BinaryIO, from_start: bool
) -> tuple[int, Fingerprint, str | None]:
    """Where ``replay`` reads the file ``name`` from: the stored position when the file is the
    one read before (see :func:`hotline_kpi.replay.resume`), else its start, and why not."""
    from hotline_kpi.replay import Fingerprint, resume

    if from_start:
        return 0, Fingerprint.of(stream), None
    return resume(stream, store.positions(name).get(0), store.identities(name).get(0))


def _converter_options(settings: Settings) -> dict[str, Any]:
    """The options of the telephony converters from the configuration (``asterisk.*``)."""
    return {"agents": dict(settings.asterisk.agents)}


def _replay_log(args: argparse.Namespace, settings: Settings) -> int:
    """``replay --format F FILE|-``: a telephony log (SPEC §9) through the same pipeline, the
    converter's state committed with each position, so a resumed replay continues open legs."""
    from hotline_kpi.ingest.converters import converter
    from hotline_kpi.ingest.sources import Source
    from hotline_kpi.live import consume, open_live
    from hotline_kpi.replay import (
        CdrDirectorySource,
        ConvertingSource,
        ReplayState,
        first_line,
        head_key,
        summary,
    )

    options = _converter_options(settings)
    path = Path(args.file)
    kind = "directory" if _cdr_directory(args) else _replayed(args.file)
    live = open_live(settings, serve_metrics=False, caller_keys=caller_keys(settings))
    try:
        source: Source
        if kind == "directory":
            source = CdrDirectorySource(
                path, args.batch_size, converter(args.format, None, options)
            )
            totals = consume(live.pipeline, source)
        elif kind in ("stdin", "stream"):
            name = "stdin" if kind == "stdin" else f"stream:{args.file}"
            with _open_replayed(path) if kind == "stream" else _stdin() as stream:
                fresh = converter(args.format, None, options)
                source = ConvertingSource(stream, name, 0, args.batch_size, fresh)
                totals = consume(live.pipeline, source)
        else:
            name = f"file:{path.resolve()}"
            state_name = f"replay:{args.format}"
            saved = ReplayState.parse(live.store.converter_state(state_name))
            head = head_key(converter(args.format, None, options), first_line(path))
            with _open_replayed(path) as stream:
                start, fingerprint, why = _resume_point(live.store, name, stream, args.from_start)
                read_again = start == 0 and head is not None and head in saved.heads
                if why is not None:
                    then = (
                        "reading it again from the start (events already stored count as "
                        "duplicates)"
                        if read_again
                        else "reading the new file from the start, continuing the legs left open"
                    )
                    print(
                        f"hotline-kpi replay: notice: {args.file}: {why}; {then}", file=sys.stderr
                    )
                if args.from_start or read_again:
                    # A file read again: a fresh converter gives its lines the ids they had,
                    # so what was stored counts as duplicates; the format's state is kept.
                    resumed, keep = converter(args.format, None, options), None
                else:
                    # Resuming this file, or a file not read before (the next one, the log
                    # after a rotation): the open legs of the last replay continue (SPEC §9).
                    try:
                        resumed = converter(args.format, saved.checkpoint, options)
                    except ValueError as exc:
                        raise SourceError(
                            f"cannot resume the {args.format} converter: {exc}"
                        ) from None
                    if head is not None and head not in saved.heads:
                        saved.heads.append(head)
                    keep = state_name
                source = ConvertingSource(
                    stream,
                    name,
                    start,
                    args.batch_size,
                    resumed,
                    fingerprint,
                    state_name=keep,
                    state=saved,
                )
                totals = consume(live.pipeline, source)
    finally:
        live.close()
    print(summary(totals))
    if args.format in NO_DROP_CAUSE:
        print(f"hotline-kpi replay: note: {NO_DROP_CAUSE[args.format]}", file=sys.stderr)
    return 0


NO_DROP_CAUSE = {
    "asterisk-queue-log": "queue_log has no hang-up cause, so the drop rate (电话中断率) of "
    "these calls reads 0 without being measured: it needs the CDR (see docs/asterisk.md)",
}
"""What a telephony format cannot tell about the drop rate, said after every replay of it."""


def _cdr_directory(args: argparse.Namespace) -> bool:
    """Whether ``FILE`` of ``replay``/``convert --format`` is a directory of CDR files (only
    ``freeswitch-cdr`` reads one: a usage error for another format); entries named ``*.json``
    that are not files are left out, with a notice."""
    from hotline_kpi.replay import not_cdr_files

    path = Path(args.file)
    if args.file == "-" or not path.is_dir():
        return False
    if args.format != "freeswitch-cdr":
        raise UsageError(f"{args.file} is a directory: only freeswitch-cdr reads a directory")
    for entry in not_cdr_files(path):
        print(
            f"hotline-kpi {args.command}: notice: {entry} is not a file: left out",
            file=sys.stderr,
        )
    return True


@contextmanager
def _stdin() -> Iterator[BinaryIO]:
    """Standard input's bytes, not closed afterwards."""
    yield sys.stdin.buffer


def _cmd_convert(args: argparse.Namespace, settings: Settings) -> int:
    """``convert --format F FILE|- --output PATH|-``: the SPEC §2 events a telephony log becomes,
    as JSONL, for teams that produce them to Kafka themselves. Lines that cannot be read are
    counted by reason on standard error (their events are not written)."""
    from hotline_kpi.ingest.converters import converter, event_line
    from hotline_kpi.replay import cdr_lines, source_lines

    path = Path(args.file)
    fresh = converter(args.format, None, _converter_options(settings))
    lines: Iterator[tuple[bytes, int]]
    if _cdr_directory(args):
        lines = cdr_lines(path)
        stream = None
    else:
        if args.file != "-":
            _replayed(args.file)
        stream = _open_replayed(path) if args.file != "-" else None
        lines = source_lines(stream if stream is not None else sys.stdin.buffer, 0)
    written = skipped = 0
    rejected: Counter[str] = Counter()
    out = sys.stdout.buffer if args.output == "-" else None
    try:
        if out is None:
            target = Path(args.output)
            if target.is_dir():
                raise UsageError(f"cannot write {args.output}: it is a directory")
            if not target.parent.exists():
                raise UsageError(
                    f"cannot write {args.output}: directory {target.parent} does not exist"
                )
            out = target.open("wb")
        for line, _ in lines:
            converted = fresh.convert(line)
            if converted.rejection is not None:
                rejected[converted.rejection.reason.name] += 1
                continue
            if converted.skipped or not converted.events:
                skipped += 1
            for event in converted.events:
                out.write(event_line(event) + b"\n")
                written += 1
        out.flush()
    finally:
        if stream is not None:
            stream.close()
        if out is not None and args.output != "-":
            out.close()
    reasons = ", ".join(f"{reason} {count}" for reason, count in sorted(rejected.items()))
    rejections = f"rejected {sum(rejected.values())} lines" + (f" ({reasons})" if reasons else "")
    print(
        f"converted: wrote {written} events, {rejections}, skipped {skipped} lines",
        file=sys.stderr,
    )
    return 0


def _replayed(file: str) -> str:
    """What ``replay FILE`` reads: ``stdin`` (``-``), a regular ``file`` (resumable), or a
    ``stream`` (a pipe such as ``<(zcat f.gz)`` or ``/dev/stdin``, or a device such as
    ``/dev/null``) read from its start; a usage error for anything else, saying what it is."""
    if file == "-":
        return "stdin"
    try:
        mode = os.stat(file).st_mode
    except FileNotFoundError:
        raise UsageError(f"no such file: {file}") from None
    except OSError as exc:
        raise SourceError(f"cannot read {file}: {exc.strerror}") from None
    if stat.S_ISREG(mode):
        return "file"
    if stat.S_ISFIFO(mode) or stat.S_ISCHR(mode):
        return "stream"
    what = "a directory" if stat.S_ISDIR(mode) else "not a regular file or a pipe"
    raise UsageError(f"{file} is {what}: give a JSONL file, or - to read standard input")


def _open_replayed(path: Path) -> BinaryIO:
    """``path`` opened for reading, a :class:`SourceError` naming it when the system refuses."""
    try:
        return path.open("rb")
    except OSError as exc:
        raise SourceError(f"cannot read {path}: {exc.strerror}") from None


def _cmd_export(args: argparse.Namespace, settings: Settings) -> int:
    from hotline_kpi.reports.render import run_export

    return run_export(settings, args)


def _cmd_verify(args: argparse.Namespace, settings: Settings) -> int:
    from hotline_kpi.metrics.months import local_time
    from hotline_kpi.metrics.store import open_existing_store
    from hotline_kpi.pipeline import rollup_config_of

    config = rollup_config_of(settings)
    store = open_existing_store(settings.store)
    try:
        if args.rebuild:
            store.ensure_rollups(config)
        if not store.rollups_built_for(config):
            print(
                "hotline-kpi verify: the rollups were built for another time zone, interval or "
                "thresholds than this configuration's (exports read the facts): give the "
                "writers' configuration, or --rebuild",
                file=sys.stderr,
            )
            return 1
        started = time.perf_counter()
        with store.batch():  # one snapshot: no batch lands between the reads
            drift = store.contact_drift(config.thresholds.repeat_window_us)
            stored, computed = store.stored_rollups(), store.computed_rollups(config)
        elapsed = time.perf_counter() - started
    finally:
        store.close()
    if drift:
        print(f"hotline-kpi verify: {len(drift):,} contacts' queue or flags differ from what "
              "their legs and caller keys give", file=sys.stderr)  # fmt: skip
        return 1
    wrong = sorted(
        key for key in stored.keys() | computed.keys() if stored.get(key) != computed.get(key)
    )
    if not wrong:
        print(f"rollups verified: {len(stored):,} sums equal their recomputation from the facts, "
              f"and every contact's derived facts its legs' ({elapsed:.1f} s)")  # fmt: skip
        return 0
    print(f"hotline-kpi verify: {len(wrong):,} of {len(computed):,} rollup sums differ from the "
          "facts:", file=sys.stderr)  # fmt: skip
    for grain, bucket, queue, agent, measure in wrong[:20]:
        key = (grain, bucket, queue, agent, measure)
        print(
            f"  grain {grain} bucket {local_time(bucket, settings.zone)} queue {queue!r} "
            f"agent {agent!r} {measure}: stored {stored.get(key, 0)}, facts {computed.get(key, 0)}",
            file=sys.stderr,
        )
    return 1


def _cmd_rules(args: argparse.Namespace, settings: Settings) -> int:
    from hotline_kpi.alerts.generate import run_rules

    return run_rules(settings, args)


def _cmd_dashboards(args: argparse.Namespace, settings: Settings) -> int:
    from hotline_kpi.dashboards.generate import run_dashboards

    return run_dashboards(settings, args, token=grafana_token)


def _simulated_window(args: argparse.Namespace) -> None:
    """``--month``, or ``--start`` with ``--days``, never both: a month would silently win."""
    if args.month is not None and (args.start is not None or args.days is not None):
        given = "--start" if args.start is not None else "--days"
        raise UsageError(
            f"--month and {given} cannot be combined: give --month YYYY-MM for a whole month, "
            "or --start YYYY-MM-DD with --days N"
        )
    if args.days is None:
        args.days = DEFAULT_DAYS


def _cmd_simulate(args: argparse.Namespace, settings: Settings) -> int:
    from hotline_kpi.simulate import run_simulate

    if args.to != "kafka":
        return run_simulate(settings, args)
    # A one-shot producer: any failure ends it with one line, so kafka-python's attempts stay
    # quiet throughout.
    with _kafka_connecting(verbose=args.verbose):
        return run_simulate(settings, args, kafka_credentials(settings.kafka))


def _add_ship(sub: Any) -> None:
    """``ship --format F PATH --to kafka`` (SPEC §5, §9)."""
    ship = sub.add_parser(
        "ship", help="follow a telephony log across rotation and produce its events to Kafka"
    )
    _add_common(ship, store=False)
    ship.add_argument("path", metavar="PATH", help="the log to follow (as tail -F does)")
    ship.add_argument("--format", choices=FORMATS, required=True)
    ship.add_argument("--to", choices=["kafka"], default="kafka")
    ship.add_argument("--bootstrap-servers")
    ship.add_argument("--topic")
    ship.add_argument(
        "--state", metavar="FILE", help="where the read position is kept (<PATH>.ship-state)"
    )
    ship.add_argument(
        "--metrics-port", type=int, help="serve the shipper's /metrics on this port (0: any)"
    )
    ship.add_argument(
        "--poll-interval", type=_positive_number, default=1.0, help="seconds between looks"
    )
    ship.add_argument("--batch-size", type=int, default=1000, help="lines per acknowledged batch")
    ship.add_argument("--once", action="store_true", help="ship what is there, then exit")
    ship.set_defaults(handler=_cmd_ship)


# Test only: where ``ship`` kills itself with SIGKILL (see hotline_kpi.ship.CrashPoints).
SHIP_CRASH_ENV = "HOTLINE_KPI_SHIP_CRASH_AT"


def _cmd_ship(args: argparse.Namespace, settings: Settings) -> int:
    """Follow the log until SIGTERM or Ctrl-C (``--once``: until it is shipped), producing its
    events and writing the state file only after the broker acknowledged them."""
    from kafka.errors import KafkaError, KafkaTimeoutError
    from prometheus_client import CollectorRegistry

    from hotline_kpi.ingest.converters import converter
    from hotline_kpi.ingest.kafka import client_config, unreachable
    from hotline_kpi.metrics.exposition import MetricsServer
    from hotline_kpi.ship import CrashPoints, KafkaLineProducer, ShipMetrics, Shipper

    if args.batch_size <= 0:
        raise UsageError("--batch-size must be positive")
    path = Path(os.path.abspath(args.path))  # as the state file names it, from any directory
    if path.is_dir():
        raise UsageError(
            f"{args.path} is a directory: ship follows one log file (replay --format "
            "freeswitch-cdr reads a directory of CDR files)"
        )
    state = Path(args.state) if args.state else path.with_name(path.name + ".ship-state")
    if not path.exists() and not state.exists():
        raise UsageError(f"{args.path} does not exist: give the path of the log to ship")
    crash = CrashPoints.parse(os.environ.get(SHIP_CRASH_ENV))
    options = _converter_options(settings)
    converter(args.format, None, options)  # an unknown or missing converter fails before Kafka
    if args.format in NO_DROP_CAUSE:
        log.warning("%s", NO_DROP_CAUSE[args.format])
    kafka = settings.kafka
    metrics = ShipMetrics(CollectorRegistry())
    server = None
    if args.metrics_port is not None:
        endpoint = settings.metrics
        try:
            server = MetricsServer(
                metrics.registry,
                endpoint.address,
                endpoint.port,
                certfile=endpoint.certfile,
                keyfile=endpoint.keyfile,
                basic_auth=metrics_basic_auth(endpoint),
            )
        except OSError as exc:
            raise HotlineError(
                f"cannot serve /metrics on {endpoint.address}:{endpoint.port}: {exc.strerror}"
            ) from None
    stop, restore = _stop_on_sigterm(signal.SIGTERM, signal.SIGINT)
    producer = None
    try:
        client = client_config(kafka, kafka_credentials(kafka))
        with _kafka_connecting(verbose=args.verbose):
            try:
                producer = KafkaLineProducer(kafka.topic, client)
            except (KafkaTimeoutError, KafkaError, OSError) as exc:
                raise unreachable(kafka, exc) from None
        shipper = Shipper(
            path,
            args.format,
            state,
            producer,
            lambda checkpoint: converter(args.format, checkpoint, options),
            metrics,
            batch_size=args.batch_size,
            crash=crash,
            stop=stop,
        )
        where = f"; metrics on {settings.metrics.address}:{server.port}" if server else ""
        log.info(
            "shipping %s (%s) to %s at %s%s",
            path,
            args.format,
            kafka.topic,
            kafka.bootstrap_servers,
            where,
        )
        try:
            shipper.run(once=args.once, poll_interval=args.poll_interval)
        finally:
            shipper.close()
    finally:
        if producer is not None:
            producer.close()
        if server is not None:
            server.close()
        restore()
    return 0


def _cmd_staffing(args: argparse.Namespace, settings: Settings) -> int:
    from hotline_kpi.staffing import run_staffing

    return run_staffing(settings, args)


# --month is a month whose neighbours a date can also hold: a month ends where the next one begins
# and the report compares it with the one before. No hotline event is older than the Unix epoch.
FIRST_MONTH, LAST_MONTH = "1970-01", "9999-11"


def _check_month(month: str) -> None:
    """A one-line :class:`UsageError` naming ``month`` unless it is ``YYYY-MM`` within range."""
    from hotline_kpi.metrics.export import parse_month

    parse_month(month)
    if not FIRST_MONTH <= month <= LAST_MONTH:
        raise UsageError(
            f"--month {month} is out of range: give a month from {FIRST_MONTH} to {LAST_MONTH}"
        )


# Options naming a file that a subcommand writes, checked before any work is done.
_FILE_OUTPUTS = {"export": ("output",), "rules": ("output",), "simulate": ("output", "truth")}


def _file_outputs(args: argparse.Namespace) -> list[str]:
    """The output files named on the command line; a usage error for an empty path or for a
    directory, which the operating system would only refuse after all the work was done."""
    if args.command == "dashboards" and args.output is not None and not args.output.strip():
        raise UsageError("--output is empty: give a directory for the dashboards")
    paths = []
    for dest in _FILE_OUTPUTS.get(args.command, ()):
        value = getattr(args, dest)
        if (
            value is None
            or value == "-"
            or (dest == "output" and getattr(args, "to", "") == "kafka")
        ):
            continue
        if not value.strip():
            stdout = ", or - for standard output" if dest == "output" else ""
            raise UsageError(f"--{dest} is empty: give a file path{stdout}")
        if Path(value).is_dir():
            raise UsageError(f"--{dest} {value} is a directory: give a file path")
        paths.append(value)
    return paths


def _output_error(exc: OSError, outputs: Iterable[str]) -> OutputError | None:
    """The one-line error for ``exc`` if it happened writing one of ``outputs``, else None."""
    reason = exc.strerror or str(exc)
    for output in outputs:
        # A write error carries no file name; a file written beside the output (a temporary
        # file renamed over it) carries its own.
        if exc.filename is None or Path(os.fsdecode(exc.filename)).parent == Path(output).parent:
            return OutputError(f"cannot write {output}: {reason}")
    return None


class _StdoutError(OutputError):
    """Standard output refused a write; what is left in its buffer can never be written."""


class _GuardedStream:
    """Standard output (or its byte buffer) whose write errors become one :class:`OutputError`,
    so that a full disk or a closed terminal is a one-line runtime error wherever it is hit."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream

    def _guard(self, method: str, *args: Any) -> Any:
        try:
            return getattr(self._stream, method)(*args)
        except BrokenPipeError:
            raise  # the reader went away (``| head``): not an error, see main
        except OSError as exc:
            reason = exc.strerror or str(exc)
            raise _StdoutError(f"cannot write to standard output: {reason}") from None

    def write(self, data: Any) -> Any:
        """Write through, turning an OS error into :class:`OutputError`."""
        return self._guard("write", data)

    def writelines(self, lines: Any) -> None:
        """Write through, turning an OS error into :class:`OutputError`."""
        self._guard("writelines", lines)

    def flush(self) -> None:
        """Flush through, turning an OS error into :class:`OutputError`."""
        self._guard("flush")

    @property
    def buffer(self) -> _GuardedStream:
        """The byte stream underneath, guarded the same way."""
        return _GuardedStream(self._stream.buffer)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def _silence_stdout() -> None:
    """Point file descriptor 1 at /dev/null, so that the interpreter's last flush of output it
    could not write does not print a second error at exit."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass  # no file descriptor (a test's captured stream): nothing will be flushed at exit


def _without_passwords(message: str, store: str | None) -> str:
    """``message`` with the store URL's password masked, whichever layer echoed it (a driver's
    error may quote the URL it could not parse). SPEC §7."""
    for password in store_passwords(store or ""):
        message = message.replace(password, "***")
    return message


class _KafkaRepeats(logging.Filter):
    """Lets one of each kafka-python message through per :attr:`window` seconds: an
    unreachable broker makes it log the same failure at every reconnect attempt."""

    window = 60.0

    def __init__(self) -> None:
        super().__init__()
        self._last: dict[tuple[str, int, str], float] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        """False for a kafka-python record like one let through in the last minute."""
        if record.name != "kafka" and not record.name.startswith("kafka."):
            return True
        # Back-off times and node ids vary between attempts; the failure is the same.
        key = (record.name, record.levelno, re.sub(r"\d+(\.\d+)?", "#", record.getMessage()))
        now = time.monotonic()
        if now - self._last.get(key, -math.inf) < self.window:
            return False
        self._last[key] = now
        return True


@contextmanager
def _kafka_connecting(*, verbose: bool) -> Iterator[None]:
    """kafka-python silent while a client connects (unless ``-v``): each failed attempt is
    logged, and a client that cannot connect ends in our one-line error anyway."""
    kafka = logging.getLogger("kafka")
    if verbose:
        yield
        return
    previous = kafka.level
    kafka.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        kafka.setLevel(previous)


def _configure_logging(*, verbose: bool) -> None:
    """INFO on stderr (DEBUG with ``-v``). kafka-python logs each reconnect attempt, dozens
    before our one-line error for an unreachable broker: without ``-v`` only its errors,
    each once a minute."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    kafka = logging.getLogger("kafka")
    if verbose:
        kafka.setLevel(logging.NOTSET)
        return
    kafka.setLevel(logging.ERROR)
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, _KafkaRepeats) for f in handler.filters):
            handler.addFilter(_KafkaRepeats())


# Subcommands that own the terminal (the live view) or run for days keep the plain stream.
_UNGUARDED = frozenset({"demo", "run"})


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``hotline-kpi`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    _configure_logging(verbose=args.verbose)
    prog = f"hotline-kpi {args.command}"
    settings: Settings | None = None
    stdout = sys.stdout
    if args.command not in _UNGUARDED:
        sys.stdout = cast(TextIO, _GuardedStream(stdout))
    try:
        if getattr(args, "month", None) is not None:
            _check_month(args.month)
        if args.command == "simulate":
            _simulated_window(args)
        outputs = _file_outputs(args)
        settings = _settings_for(args)
        handler: Handler = args.handler
        try:
            status = handler(args, settings)
            sys.stdout.flush()
        except OSError as exc:
            error = None if isinstance(exc, BrokenPipeError) else _output_error(exc, outputs)
            if error is None:
                raise
            raise error from None
        return status
    except (ConfigError, HotlineError) as exc:
        if isinstance(exc, _StdoutError):
            _silence_stdout()
        store = settings.store if settings is not None else getattr(args, "store", None)
        print(f"{prog}: error: {_without_passwords(str(exc), store)}", file=sys.stderr)
        return 2 if isinstance(exc, ConfigError | UsageError) else 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        _silence_stdout()
        return 0
    finally:
        sys.stdout = stdout


if __name__ == "__main__":
    sys.exit(main())
