"""PromQL text: numbers without float noise, label selectors, summed increases.

The only place where the generators turn values into PromQL text fragments.
"""

from __future__ import annotations


def number(value: float) -> str:
    """``value`` with six fixed decimals, trailing zeros dropped: ``1 - 0.98`` is ``0.02``."""
    text = f"{value:.6f}".rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text


def percent(value: float) -> str:
    """A ratio as a percentage for people: ``0.005`` is ``0.5%``."""
    return f"{number(value * 100)}%"


def selector(job: str, *extra: str) -> str:
    """The label selector of the exporter's series: ``{job="hotline-kpi"}``."""
    return "{" + ", ".join((f'job="{job}"', *extra)) + "}"


def summed_increase(metric: str, job: str, window: str, by: str | None) -> str:
    """``sum by (<by>) (increase(<metric>{job=…}[<window>]))``; ``by=None`` sums everything."""
    grouping = f" by ({by})" if by else ""
    return f"sum{grouping} (increase({metric}{selector(job)}[{window}]))"


def summed_rate(metric: str, job: str, window: str, by: str | None) -> str:
    """``sum by (<by>) (rate(<metric>{job=…}[<window>]))``; ``by=None`` sums everything."""
    grouping = f" by ({by})" if by else ""
    return f"sum{grouping} (rate({metric}{selector(job)}[{window}]))"


def minus(left: str, *rights: str) -> str:
    """``left - right - …``, where a missing ``right`` series counts as 0 (a counter not yet
    born). Each ``or`` falls back to ``left`` itself times 0, never to a partial difference
    (``a - b * 0`` would be ``a``)."""
    return left + "".join(f"\n- ({right} or {left} * 0)" for right in rights)
