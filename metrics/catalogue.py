"""The KPI catalogue: every KPI of SPEC §3 declared once, and everything else derived from it.

A KPI is a ratio of two sums of *measures*: additive counts the store tallies per scope from the
facts the fold computed (answered requests, short abandons, seconds of wait, ...). Its entry says
which measures make its numerator and denominator, which way is good, which configured target
holds it, its unit, its names in Chinese and English, the scopes it is reported in, and how
Prometheus computes it from the counters of SPEC §4. The export, the recording and alerting
rules, the dashboards, the reports and the demo's live view all read these entries; adding a KPI
is one entry here plus its fact in the fold (``metrics/fold.py``).

This module is pure data: no I/O, no configuration, no formatting.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum


class Measure(StrEnum):
    """An additive count over a scope and a period, tallied from stored facts.

    Time measures are in microseconds (the fold's unit); ``Kpi.scale`` turns them into seconds.
    """

    REQUESTS = "requests"  # agent requests (人工请求), short abandons included
    ANSWERED = "answered"
    WITHIN_THRESHOLD = "within_threshold"  # answered at most T s after queued_at
    ABANDONED = "abandoned"  # every abandon, short ones included
    SHORT_ABANDONED = "short_abandoned"  # abandoned less than S s after queued_at
    DROPPED = "dropped"  # answered, ended by a network or system failure
    HANDLED = "handled"  # answered and ended
    WAIT_US = "wait_us"  # Σ (answered ts − queued_at) of answered requests
    HANDLE_US = "handle_us"  # Σ (ended ts − answered ts) of handled requests
    QA_REVIEWS = "qa_reviews"
    QA_ACCURATE = "qa_accurate"
    SURVEYS = "surveys"
    SATISFIED = "satisfied"  # surveys scored at least the satisfied score
    SCORE_SUM = "score_sum"
    TICKETS_SETTLED = "tickets_settled"  # closed, or open past due at "now"
    TICKETS_ON_TIME = "tickets_on_time"
    BLOCKED = "blocked"  # could not enter the queue (无法进等待队列)
    BLOCKED_EXCLUDED = "blocked_excluded"  # blocked, when blocked legs are not counted requests
    LEFT = "left"  # left the queue unanswered without hanging up
    TRANSFERRED = "transferred"  # answered, ended with cause transfer
    WRAPPED = "wrapped"  # answered, ended and wrapped up
    HOLD_US = "hold_us"  # Σ hold of handled requests (absent = 0)
    WRAP_US = "wrap_us"  # Σ max(0, wrapped ts − ended ts) of wrapped requests
    BLOCKED_QUEUE_FULL = "blocked_queue_full"  # blocked and left legs by reason (SPEC §2)
    BLOCKED_NO_AGENTS = "blocked_no_agents"
    BLOCKED_CLOSED = "blocked_closed"
    LEFT_TIMEOUT = "left_timeout"
    LEFT_NO_AGENTS = "left_no_agents"
    LEFT_CALLBACK_REQUESTED = "left_callback_requested"
    LEFT_OVERFLOW = "left_overflow"
    CONTACTS = "contacts"  # contacts by their call.offered ts
    CONTACTS_KEYED = "contacts_keyed"  # ... with a caller key
    REPEAT_CONTACTS = "repeat_contacts"  # ... another contact with the key in the W before
    RESOLVABLE = "resolvable"  # keyed, answered, offered + W <= "now"
    RESOLVED = "resolved"  # ... and no contact with the key in the W after
    COMPLAINTS_KEYED = "complaints_keyed"  # complaint tickets leading to a caller key
    REPEAT_COMPLAINTS = "repeat_complaints"  # ... another one in the 30 days before
    STAFFED_US = "staffed_us"  # agent time in ready, busy or wrap_up
    OCCUPIED_US = "occupied_us"  # agent time in busy or wrap_up
    LOGGED_IN_US = "logged_in_us"  # agent time in any state but logged_out
    NOT_READY_US = "not_ready_us"  # agent time in not_ready


BLOCKED_BY_REASON: Mapping[str, Measure] = {
    "queue_full": Measure.BLOCKED_QUEUE_FULL,
    "no_agents": Measure.BLOCKED_NO_AGENTS,
    "closed": Measure.BLOCKED_CLOSED,
}
LEFT_BY_REASON: Mapping[str, Measure] = {
    "timeout": Measure.LEFT_TIMEOUT,
    "no_agents": Measure.LEFT_NO_AGENTS,
    "callback_requested": Measure.LEFT_CALLBACK_REQUESTED,
    "overflow": Measure.LEFT_OVERFLOW,
}


class Direction(StrEnum):
    """Which side of its target a KPI must be on (SPEC §6: fixed per KPI)."""

    AT_LEAST = "at_least"  # met when value >= target
    BELOW = "below"  # met when value < target

    @property
    def sign(self) -> str:
        """The relation of a met value to its target as people read it: ``≥`` or ``<``."""
        return "≥" if self is Direction.AT_LEAST else "<"


class Unit(StrEnum):
    """How a KPI's value reads: a share, a duration, or a score out of 10."""

    RATIO = "ratio"
    SECONDS = "seconds"
    SCORE = "score"


class Scope(StrEnum):
    """Where a KPI is reported: the whole hotline, each queue, each agent, each ticket kind."""

    OVERALL = "overall"
    QUEUE = "queue"
    AGENT = "agent"
    KIND = "kind"


@dataclass(frozen=True, slots=True)
class Sum:
    """A signed sum of measures: ``Sum((REQUESTS,), minus=(SHORT_ABANDONED,))``."""

    plus: tuple[Measure, ...]
    minus: tuple[Measure, ...] = ()

    def of(self, counts: Mapping[Measure, int]) -> int:
        """The sum over a scope's measure counts (absent measures count 0)."""
        return sum(counts.get(m, 0) for m in self.plus) - sum(counts.get(m, 0) for m in self.minus)


@dataclass(frozen=True, slots=True)
class Counters:
    """How Prometheus computes a ratio KPI from SPEC §4 counters (``*_minus`` subtracted)."""

    numerator: str
    denominator: str
    numerator_minus: str | None = None
    denominator_minus: str | None = None


@dataclass(frozen=True, slots=True)
class Histogram:
    """How Prometheus computes a mean KPI: ``_sum`` / ``_count`` of a SPEC §4 histogram."""

    name: str


@dataclass(frozen=True, slots=True)
class Kpi:
    """One KPI of SPEC §3, as every output of the project reads it."""

    key: str  # as in SPEC §5
    zh: str
    en: str
    short: str  # the demo's two-line column head: "zh\nen"
    unit: Unit
    numerator: Sum
    denominator: Sum
    direction: Direction = Direction.AT_LEAST
    target: str | None = None  # the key under ``targets:`` in the configuration
    scopes: frozenset[Scope] = frozenset({Scope.OVERALL, Scope.QUEUE, Scope.AGENT})
    prometheus: Counters | Histogram | None = None
    group: Scope = Scope.QUEUE  # the label Prometheus' per-group rules keep
    window: str = "1h"  # the dashboards' "now" window: calls move within the hour
    scale: int = 1  # numerator divisor: 1_000_000 for a time measure in microseconds
    denominator_scale: int = 1  # the same for the denominator (agent state seconds)
    digits: int = 1  # decimals shown in the live view: of a percentage, or of seconds
    lower_is_better: bool = False  # for KPIs without a target (abandon rate, speed of answer)
    neutral: bool = False  # neither way is better news (handle time: thorough against quick)

    @property
    def worse_when_up(self) -> bool:
        """Whether a rise is bad news (drop rate, abandon rate, waiting)."""
        return self.direction is Direction.BELOW or self.lower_is_better

    @property
    def counters(self) -> Counters:
        """The SPEC §4 counters Prometheus computes this ratio KPI from (``ValueError`` if none)."""
        if not isinstance(self.prometheus, Counters):
            raise ValueError(f"{self.key} is not a ratio of Prometheus counters")
        return self.prometheus

    @property
    def histogram(self) -> Histogram:
        """The SPEC §4 histogram Prometheus averages this KPI from (``ValueError`` if none)."""
        if not isinstance(self.prometheus, Histogram):
            raise ValueError(f"{self.key} is not the mean of a Prometheus histogram")
        return self.prometheus

    @property
    def title(self) -> str:
        """Chinese with the English alongside, as the supervisors read it."""
        return f"{self.zh} {self.en}"

    def value(self, counts: Mapping[Measure, int]) -> tuple[float, float]:
        """(numerator, denominator) of this KPI over one scope's measure counts."""
        numerator = self.numerator.of(counts)
        denominator = self.denominator.of(counts)
        return (
            numerator / self.scale if self.scale != 1 else numerator,
            denominator / self.denominator_scale if self.denominator_scale != 1 else denominator,
        )


_US = 1_000_000
# Counted requests (SPEC §3): agent requests minus short abandons, minus blocked legs when
# definitions.blocked_are_requests is false (the fold then marks them BLOCKED_EXCLUDED).
_COUNTED = Sum((Measure.REQUESTS,), minus=(Measure.SHORT_ABANDONED, Measure.BLOCKED_EXCLUDED))
_NOT_SHORT = Sum((Measure.REQUESTS,), minus=(Measure.SHORT_ABANDONED,))
_REQUESTS = "hotline_agent_requests_total"
_SHORT = "hotline_calls_short_abandoned_total"
_CALLS = frozenset({Scope.OVERALL, Scope.QUEUE})

MANUAL_CONNECTION_RATE = Kpi(
    "manual_connection_rate",
    "人工接通率",
    "Manual connection rate",
    "接通率\nconn%",
    Unit.RATIO,
    Sum((Measure.ANSWERED,)),
    _COUNTED,
    target="manual_connection_rate",
    scopes=_CALLS,
    prometheus=Counters("hotline_agent_answered_total", _REQUESTS, denominator_minus=_SHORT),
)
DROP_RATE = Kpi(
    "drop_rate",
    "电话中断率",
    "Call drop rate",
    "中断\ndrop%",
    Unit.RATIO,
    Sum((Measure.DROPPED,)),
    Sum((Measure.ANSWERED,)),
    direction=Direction.BELOW,
    target="drop_rate",
    digits=2,
    scopes=_CALLS,
    prometheus=Counters("hotline_calls_dropped_total", "hotline_agent_answered_total"),
)
TIMELINESS = Kpi(
    "timeliness",
    "工单及时率",
    "Timeliness",
    "及时\nontm%",
    Unit.RATIO,
    Sum((Measure.TICKETS_ON_TIME,)),
    Sum((Measure.TICKETS_SETTLED,)),
    target="timeliness",
    scopes=frozenset({Scope.OVERALL, Scope.QUEUE, Scope.KIND}),
    prometheus=Counters("hotline_tickets_on_time_total", "hotline_tickets_due_total"),
    group=Scope.KIND,
    window="1d",
)
ANSWER_ACCURACY = Kpi(
    "answer_accuracy",
    "咨询处理准确率",
    "Answer accuracy",
    "准确\nacc%",
    Unit.RATIO,
    Sum((Measure.QA_ACCURATE,)),
    Sum((Measure.QA_REVIEWS,)),
    target="answer_accuracy",
    prometheus=Counters("hotline_qa_accurate_total", "hotline_qa_reviews_total"),
    window="1d",
)
SERVICE_LEVEL = Kpi(
    "service_level",
    "服务水平",
    "Service level",
    "服务\nSL%",
    Unit.RATIO,
    Sum((Measure.WITHIN_THRESHOLD,)),
    _COUNTED,
    target="service_level",
    scopes=_CALLS,
    prometheus=Counters(
        "hotline_answered_within_threshold_total", _REQUESTS, denominator_minus=_SHORT
    ),
)
ABANDON_RATE = Kpi(
    "abandon_rate",
    "放弃率",
    "Abandon rate",
    "放弃\nabnd%",
    Unit.RATIO,
    Sum((Measure.ABANDONED,), minus=(Measure.SHORT_ABANDONED,)),
    _COUNTED,
    scopes=_CALLS,
    prometheus=Counters(
        "hotline_calls_abandoned_total",
        _REQUESTS,
        numerator_minus=_SHORT,
        denominator_minus=_SHORT,
    ),
    lower_is_better=True,
)
AVERAGE_SPEED_OF_ANSWER = Kpi(
    "average_speed_of_answer",
    "平均应答时长",
    "Average speed of answer",
    "应答\nASA s",
    Unit.SECONDS,
    Sum((Measure.WAIT_US,)),
    Sum((Measure.ANSWERED,)),
    prometheus=Histogram("hotline_answer_wait_seconds"),
    scale=_US,
    digits=0,
    lower_is_better=True,
)
AVERAGE_HANDLE_TIME = Kpi(
    "average_handle_time",
    "平均处理时长",
    "Average handle time",
    "处理\nAHT s",
    Unit.SECONDS,
    Sum((Measure.HANDLE_US,)),
    Sum((Measure.HANDLED,)),
    prometheus=Histogram("hotline_handle_seconds"),
    scale=_US,
    digits=0,
    neutral=True,
)
SATISFACTION_RATE = Kpi(
    "satisfaction_rate",
    "满意率",
    "Satisfaction rate",
    "满意\nsat%",
    Unit.RATIO,
    Sum((Measure.SATISFIED,)),
    Sum((Measure.SURVEYS,)),
    prometheus=Counters("hotline_survey_satisfied_total", "hotline_survey_responses_total"),
    window="1d",
)
SATISFACTION_MEAN = Kpi(
    "satisfaction_mean",
    "满意度均分",
    "Mean satisfaction score",
    "均分\nscore",
    Unit.SCORE,
    Sum((Measure.SCORE_SUM,)),
    Sum((Measure.SURVEYS,)),
    window="1d",
)

BLOCKED_RATE = Kpi(
    "blocked_rate",
    "呼损率(无法进队)",
    "Blocked rate",
    "阻塞\nblk%",
    Unit.RATIO,
    Sum((Measure.BLOCKED,)),
    _NOT_SHORT,
    scopes=_CALLS,
    prometheus=Counters("hotline_calls_blocked_total", _REQUESTS, denominator_minus=_SHORT),
    lower_is_better=True,
)
AVERAGE_HOLD_TIME = Kpi(
    "average_hold_time",
    "平均保持时长",
    "Average hold time",
    "保持\nhold s",
    Unit.SECONDS,
    Sum((Measure.HOLD_US,)),
    Sum((Measure.HANDLED,)),
    prometheus=Histogram("hotline_hold_seconds"),
    scale=_US,
    digits=0,
    lower_is_better=True,
)
AVERAGE_AFTER_CALL_WORK = Kpi(
    "average_after_call_work",
    "平均话后处理时长",
    "Average after-call work",
    "话后\nACW s",
    Unit.SECONDS,
    Sum((Measure.WRAP_US,)),
    Sum((Measure.WRAPPED,)),
    prometheus=Histogram("hotline_after_call_work_seconds"),
    scale=_US,
    digits=0,
    neutral=True,
)
TRANSFER_RATE = Kpi(
    "transfer_rate",
    "转接率",
    "Transfer rate",
    "转接\nxfer%",
    Unit.RATIO,
    Sum((Measure.TRANSFERRED,)),
    Sum((Measure.HANDLED,)),
    prometheus=Counters("hotline_calls_transferred_total", "hotline_handle_seconds_count"),
    neutral=True,
)
_OVERALL = frozenset({Scope.OVERALL})
REPEAT_CONTACT_RATE = Kpi(
    "repeat_contact_rate",
    "重复来电率",
    "Repeat contact rate",
    "重复\nrpt%",
    Unit.RATIO,
    Sum((Measure.REPEAT_CONTACTS,)),
    Sum((Measure.CONTACTS_KEYED,)),
    scopes=_OVERALL,
    prometheus=Counters("hotline_repeat_contacts_total", "hotline_contacts_keyed_total"),
    group=Scope.OVERALL,
    window="1d",
    lower_is_better=True,
)
FIRST_CONTACT_RESOLUTION = Kpi(
    "first_contact_resolution",
    "一次解决率",
    "First contact resolution",
    "一次\nFCR%",
    Unit.RATIO,
    Sum((Measure.RESOLVED,)),
    Sum((Measure.RESOLVABLE,)),
    scopes=_OVERALL,
    group=Scope.OVERALL,
    window="1d",
)
REPEAT_COMPLAINT_RATE = Kpi(
    "repeat_complaint_rate",
    "重复投诉率",
    "Repeat complaint rate",
    "复诉\nrcmp%",
    Unit.RATIO,
    Sum((Measure.REPEAT_COMPLAINTS,)),
    Sum((Measure.COMPLAINTS_KEYED,)),
    scopes=_OVERALL,
    group=Scope.OVERALL,
    window="1d",
    lower_is_better=True,
)
_STATES = frozenset({Scope.OVERALL, Scope.AGENT})
OCCUPANCY = Kpi(
    "occupancy",
    "占用率",
    "Occupancy",
    "占用\nocc%",
    Unit.RATIO,
    Sum((Measure.OCCUPIED_US,)),
    Sum((Measure.STAFFED_US,)),
    scopes=_STATES,
    group=Scope.AGENT,
    scale=_US,
    denominator_scale=_US,
    neutral=True,
)
UTILISATION = Kpi(
    "utilisation",
    "利用率",
    "Utilisation",
    "利用\nutil%",
    Unit.RATIO,
    Sum((Measure.OCCUPIED_US,)),
    Sum((Measure.LOGGED_IN_US,)),
    scopes=_STATES,
    group=Scope.AGENT,
    scale=_US,
    denominator_scale=_US,
    neutral=True,
)
NOT_READY_SHARE = Kpi(
    "not_ready_share",
    "示忙占比",
    "Not-ready share",
    "示忙\nNR%",
    Unit.RATIO,
    Sum((Measure.NOT_READY_US,)),
    Sum((Measure.LOGGED_IN_US,)),
    scopes=_STATES,
    group=Scope.AGENT,
    scale=_US,
    denominator_scale=_US,
    lower_is_better=True,
)

CATALOGUE: tuple[Kpi, ...] = (
    MANUAL_CONNECTION_RATE,
    DROP_RATE,
    TIMELINESS,
    ANSWER_ACCURACY,
    SERVICE_LEVEL,
    ABANDON_RATE,
    BLOCKED_RATE,
    AVERAGE_SPEED_OF_ANSWER,
    AVERAGE_HANDLE_TIME,
    AVERAGE_HOLD_TIME,
    AVERAGE_AFTER_CALL_WORK,
    TRANSFER_RATE,
    SATISFACTION_RATE,
    SATISFACTION_MEAN,
    REPEAT_CONTACT_RATE,
    FIRST_CONTACT_RESOLUTION,
    REPEAT_COMPLAINT_RATE,
    OCCUPANCY,
    UTILISATION,
    NOT_READY_SHARE,
)
"""Every KPI, in the order the reports list them (SPEC §5 keys)."""

KPIS: Mapping[str, Kpi] = {kpi.key: kpi for kpi in CATALOGUE}
KPI_KEYS: tuple[str, ...] = tuple(KPIS)

MISSION: tuple[str, ...] = ("manual_connection_rate", "drop_rate", "timeliness", "answer_accuracy")
"""The four targets group headquarters holds the hotline to (SPEC §1), in its order."""


QUEUE_ORDER: tuple[str, ...] = (
    "manual_connection_rate",
    "service_level",
    "abandon_rate",
    "drop_rate",
    "average_speed_of_answer",
    "average_handle_time",
    "answer_accuracy",
    "timeliness",
    "satisfaction_rate",
    "satisfaction_mean",
)
"""The order a queue's KPIs are read in, calls first: each per-queue table (the wallboard's, the
monthly report's) shows those of them it has, in this order."""

AGENT_ORDER: tuple[str, ...] = (
    "drop_rate",
    "average_speed_of_answer",
    "average_handle_time",
    "average_hold_time",
    "average_after_call_work",
    "transfer_rate",
    "answer_accuracy",
    "satisfaction_rate",
    "satisfaction_mean",
)
"""The KPIs of an agent's entry in the monthly export, in their order there (SPEC §5 per agent):
the agent's answers, reviews and surveys."""

AGENT_CSV_ORDER: tuple[str, ...] = (
    "answer_accuracy",
    "average_handle_time",
    "satisfaction_mean",
    "drop_rate",
)
"""The agent KPIs the CSV export writes a row for, in its order."""

AGENT_RANKING: tuple[str, str] = ("satisfaction_mean", "answer_accuracy")
"""What the monthly report ranks agents by, best first: the first KPI, ties by the second (both
higher is better), then by answers."""


def kpi(key: str) -> Kpi:
    """The catalogue entry of ``key``; a ``KeyError`` names an unknown key."""
    return KPIS[key]


def met(entry: Kpi, value: float | None, target: float) -> bool | None:
    """Whether ``value`` meets ``target`` in the KPI's fixed direction (None without data)."""
    if value is None:
        return None
    return value < target if entry.direction is Direction.BELOW else value >= target


def target_of(entry: Kpi, targets: object) -> float | None:
    """The configured target of ``entry`` from the ``targets:`` settings, or None without one."""
    if entry.target is None:
        return None
    return float(getattr(targets, entry.target))
