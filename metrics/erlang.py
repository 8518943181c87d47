"""Queueing models for staffing: Erlang B, Erlang C (M/M/n) and Erlang A (M/M/n+M).

Pure functions of numbers: no I/O, no clock. All rates are per second (any unit works as long as
it is the same for every rate and time argument).

Notation (Garnett, Mandelbaum & Reiman 2002; Mandelbaum & Zeltyn 2005):

- ``λ`` arrival rate, ``μ`` service rate (1 / mean handle time), ``θ`` abandonment rate
  (1 / mean patience), ``n`` agents, ``R = λ/μ`` offered load in Erlangs, ``ρ = λ/(nμ)``.

References
----------
- [GMR] O. Garnett, A. Mandelbaum, M. Reiman, "Designing a Call Center with Impatient
  Customers", Manufacturing & Service Operations Management 4(3):208–227, 2002.
- [MZ] A. Mandelbaum, S. Zeltyn, "The Palm/Erlang-A Queue, with Applications to Call Centers",
  Technion teaching note, 2005 (§3 steady state, §4.4 ``P{W>0}``, §4.5 ``P{Ab}``).
- [DLMF] NIST Digital Library of Mathematical Functions, §8.2 (incomplete gamma functions),
  §8.5.1 and §13.6.5 (their relation to Kummer's function ``M(1, a + 1, z)``).

Why not a library: ``pyworkforce`` implements Erlang C only; ``erlangccmath`` needs a vendor
user id at run time; ``pyqueueing`` (0.1.x) is new and does not cover waiting-time
distributions with abandonment. The formulas below are short, published and tested against
reference values and a simulation (``tests/unit/test_erlang.py``). The special functions under
them (regularised incomplete gamma, log-gamma, Kummer's function) are scipy's (issue 17), not
hand-written series.

Derivation of the Erlang A waiting-time quantities (used by :class:`ErlangA`)
-----------------------------------------------------------------------------
An arrival that finds all ``n`` agents busy and ``k`` callers queued ahead reaches an agent after
``k + 1`` exponential phases with rates ``nμ + jθ`` (``j = k, …, 0``), so with ``x = nμ/θ``,
``y = λ/θ`` its *offered* wait ``V`` satisfies ``Z = e^{-θV} ~ Beta(x, k + 1)``. The state seen on
arrival (PASTA, [MZ] §3) is ``π_{n+k} = π_n · y^k Γ(x+1)/Γ(x+k+1)``; summing over ``k`` gives the
defective density of ``Z`` over arrivals that wait::

    g(z) = π_n · x · z^(x-1) · e^(y(1-z)),   0 < z < 1.

The caller's own patience ``τ ~ Exp(θ)`` is independent, so ``P(τ > V | V) = Z``. With
``K = e^y y^-x Γ(x+1)`` and ``P(a, ·)`` the regularised lower incomplete gamma function:

- ``∫_0^b g = π_n K P(x, y b)`` and ``∫_0^b z g = π_n K (x/y) P(x+1, y b)``;
- ``P{W>0} = π_n K P(x, y) = π_n A(x, y)`` — [MZ] eq. (4.4), [GMR] §3;
- served after waiting: ``π_n (x/y)(A − 1)``, hence ``P{Ab} = P{W>0}(1 − 1/ρ + 1/(ρA))`` —
  [MZ] eq. (4.5);
- answered within ``t`` (``c = e^{-θt}``): ``1 − P{W>0} + ∫_c^1 z g``;
- abandoned with wait ``< s`` (``c = e^{-θs}``): ``∫ (1 − max(z, c)) g``;
- ``P{W > t} = c ∫_0^c g`` for the actual wait ``W = min(V, τ)``;
- ``E[W] = P{Ab}/θ`` ([MZ] §4.6).

``π_n = E_B / (1 + (A − 1) E_B)`` with ``E_B`` the Erlang B formula ([MZ] eq. (3.3)). Everything
is carried in logarithms so that hundreds (or thousands) of agents neither overflow nor
underflow.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from scipy import special as _special

__all__ = [
    "ErlangA",
    "ErlangC",
    "agents_needed",
    "erlang_a",
    "erlang_b",
    "erlang_c",
    "erlang_c_agents_needed",
    "log_erlang_b",
    "model_abandon_rate",
    "model_manual_connection_rate",
    "model_service_level",
]

Kpi = Literal["manual_connection_rate", "service_level"]

# Below this a regularised incomplete gamma value is (near) subnormal and has lost digits: its
# logarithm is then taken from Kummer's function instead (see _log_gamma_p_q).
_TINY = 1e-290
# Beyond this many "patience phases" (x = nμ/θ) callers are so patient that Erlang C is exact to
# far below the precision of any measured input, and the series would only cost time.
_X_ERLANG_C = 1e7
# A load within this of an integer n counts as n Erlangs when deciding Erlang C stability, so that
# 100 calls / 1800 s at 180 s (10 E, computed as 9.999999999999998) is unstable with 10 agents.
_LOAD_SLACK = 1e-9


# --------------------------------------------------------------------------------------------
# Special functions
# --------------------------------------------------------------------------------------------


def _log_gamma_p_q(a: float, z: float) -> tuple[float, float]:
    """``(log P(a, z), log Q(a, z))``, the regularised incomplete gamma functions.

    Both come from scipy's ``gammainc`` / ``gammaincc`` (Cephes/Boost: series, continued fraction
    and Temme's uniform expansion, each where it is accurate). Erlang A needs ``log P`` far below
    the smallest double (``P(x, y)`` with ``y < x`` is ``≈ e^{-x(r-1-ln r)}``, ``r = y/x``, which
    underflows from ``x ≈ 2·10⁴`` at ``r = 0.75`` while ``π_n K`` grows as fast), so where
    ``P`` is not a normal double it is taken in logarithms from Kummer's function,
    ``P(a, z) = z^a e^{-z} M(1, a + 1, z) / Γ(a + 1)`` (DLMF 8.5.1, 13.6.5), ``M`` being
    ``hyp1f1``. ``Q`` is only that small where ``z ≫ a + 1``, where the model multiplies it by at
    most ``π_n K ≤ 1/P ≤ 2``, so its underflow to zero is exact to double precision.
    """
    if a <= 0:
        raise ValueError(f"incomplete gamma needs a > 0, got a={a}")
    if z <= 0:
        return -math.inf, 0.0
    # One kernel call: the tail that is the smaller one (below or above z = a + 1), the other as
    # its complement in log space, which is exact there since the smaller tail is ≲ 0.6.
    if z < a + 1:
        p = _special.gammainc(a, z)
        if p >= _TINY:
            log_p = math.log(p)
        else:
            log_p = (
                _special.xlogy(a, z)
                - z
                - _special.gammaln(a + 1.0)
                + math.log(_special.hyp1f1(1.0, a + 1.0, z))
            )
        log_p = min(float(log_p), 0.0)
        return log_p, _log1mexp(log_p)
    q = _special.gammaincc(a, z)
    log_q = min(math.log(q), 0.0) if q > 0.0 else -math.inf
    return _log1mexp(log_q), log_q


def _log1mexp(log_v: float) -> float:
    """``log(1 − e^log_v)`` for ``log_v ≤ 0``, accurate at both ends (Mächler 2012)."""
    if log_v == 0.0:
        return -math.inf
    if log_v == -math.inf:
        return 0.0
    if log_v > -math.log(2.0):
        return math.log(-math.expm1(log_v))
    return math.log1p(-math.exp(log_v))


def _logaddexp(u: float, v: float) -> float:
    """``log(e^u + e^v)`` without overflow."""
    if u == -math.inf:
        return v
    if v == -math.inf:
        return u
    m = max(u, v)
    return m + math.log(math.exp(u - m) + math.exp(v - m))


def _log_p_delta(a: float, z_lo: float, z_hi: float) -> float:
    """``log(P(a, z_hi) − P(a, z_lo))`` for ``z_lo ≤ z_hi``, from whichever tail is smaller."""
    if z_hi <= z_lo:
        return -math.inf
    lp_hi, lq_hi = _log_gamma_p_q(a, z_hi)
    lp_lo, lq_lo = _log_gamma_p_q(a, z_lo)
    if lp_hi < lq_lo:
        # lower tail small: P(hi) − P(lo)
        return lp_hi + _log1mexp(min(lp_lo - lp_hi, 0.0)) if lp_lo > -math.inf else lp_hi
    # upper tail small: Q(lo) − Q(hi)
    return lq_lo + _log1mexp(min(lq_hi - lq_lo, 0.0)) if lq_hi > -math.inf else lq_lo


# --------------------------------------------------------------------------------------------
# Erlang B and C
# --------------------------------------------------------------------------------------------


def log_erlang_b(n: int, load: float) -> float:
    """Natural log of the Erlang B blocking probability ``E_B(n, R)``.

    Uses the classical recursion ``1/E_B(k) = 1 + (k/R)/E_B(k−1)`` carried in logarithms, so it
    is exact to rounding and never overflows (for ``R = 1`` and ``n = 500``, ``E_B ≈ 10^-1135``).
    """
    if n < 0:
        raise ValueError(f"number of agents must be >= 0, got {n}")
    if load < 0:
        raise ValueError(f"offered load must be >= 0, got {load}")
    if n == 0:
        return 0.0
    if load == 0:
        return -math.inf
    log_inv = 0.0  # log(1/E_B(0)) = 0
    log_load = math.log(load)
    for k in range(1, n + 1):
        log_inv = _logaddexp(0.0, math.log(k) - log_load + log_inv)
    return -log_inv


def erlang_b(n: int, load: float) -> float:
    """Erlang B: the probability that an arrival finds all ``n`` servers busy in M/M/n/n."""
    return math.exp(log_erlang_b(n, load))


def _check_rates(n: int, arrival_rate: float, service_rate: float) -> None:
    if n < 0:
        raise ValueError(f"number of agents must be >= 0, got {n}")
    if arrival_rate < 0 or not math.isfinite(arrival_rate):
        raise ValueError(f"arrival rate must be finite and >= 0, got {arrival_rate}")
    if service_rate <= 0 or not math.isfinite(service_rate):
        raise ValueError(f"service rate must be finite and > 0, got {service_rate}")


@dataclass(frozen=True, slots=True)
class ErlangC:
    """M/M/n without abandonment (Erlang C). Build it with :func:`erlang_c`.

    When ``n ≤ R`` the queue is unstable: every caller waits (``p_wait = 1``), forever on
    average, and no call is answered within any finite threshold.
    """

    agents: int
    arrival_rate: float
    service_rate: float
    p_wait: float

    @property
    def load(self) -> float:
        """Offered load ``R = λ/μ`` in Erlangs."""
        return self.arrival_rate / self.service_rate

    @property
    def stable(self) -> bool:
        """Whether ``n > R`` (otherwise the queue grows without bound)."""
        return self.arrival_rate == 0 or self.agents > self.load + _LOAD_SLACK

    def service_level(self, t: float) -> float:
        """``P{W ≤ t} = 1 − C(n, R) e^{−(nμ − λ) t}`` (Erlang C waiting-time distribution)."""
        if not self.stable:
            return 0.0
        return 1.0 - self.p_wait * math.exp(
            -(self.agents * self.service_rate - self.arrival_rate) * t
        )

    @property
    def asa(self) -> float:
        """Average speed of answer ``E[W] = C(n, R)/(nμ − λ)``; ``inf`` if unstable."""
        if not self.stable:
            return math.inf
        if self.arrival_rate == 0:
            return 0.0
        return self.p_wait / (self.agents * self.service_rate - self.arrival_rate)


def erlang_c(n: int, arrival_rate: float, service_rate: float) -> ErlangC:
    """Erlang C model: ``C(n, R) = E_B / (1 − ρ(1 − E_B))`` with ``ρ = R/n`` (stable case)."""
    _check_rates(n, arrival_rate, service_rate)
    load = arrival_rate / service_rate
    if arrival_rate == 0:
        return ErlangC(n, arrival_rate, service_rate, 0.0)
    if n <= load + _LOAD_SLACK:
        return ErlangC(n, arrival_rate, service_rate, 1.0)
    b = erlang_b(n, load)
    rho = load / n
    return ErlangC(n, arrival_rate, service_rate, b / (1.0 - rho * (1.0 - b)))


# --------------------------------------------------------------------------------------------
# Erlang A
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ErlangA:
    """M/M/n+M (Palm/Erlang A): Poisson arrivals, exponential handle time and patience, FCFS.

    Build it with :func:`erlang_a`. ``log_scale`` is ``log(π_n K)`` of the module docstring; the
    methods evaluate the closed forms derived there. With ``θ = 0`` (no abandonment) every method
    falls back to the Erlang C model.
    """

    agents: int
    arrival_rate: float
    service_rate: float
    patience_rate: float
    log_scale: float

    # -- helpers -------------------------------------------------------------------------------

    @property
    def _x(self) -> float:
        return self.agents * self.service_rate / self.patience_rate

    @property
    def _y(self) -> float:
        return self.arrival_rate / self.patience_rate

    def _erlang_c(self) -> ErlangC | None:
        if self.patience_rate == 0 or self._x > _X_ERLANG_C:
            return erlang_c(self.agents, self.arrival_rate, self.service_rate)
        return None

    def _g(self, lo: float, hi: float) -> float:
        """``∫_lo^hi g(z) dz`` (arrivals that wait, with ``e^{-θV}`` in ``[lo, hi]``)."""
        y = self._y
        return math.exp(self.log_scale + _log_p_delta(self._x, y * lo, y * hi))

    def _h(self, lo: float, hi: float) -> float:
        """``∫_lo^hi z g(z) dz`` (arrivals that wait and are served)."""
        x, y = self._x, self._y
        return math.exp(self.log_scale + math.log(x / y) + _log_p_delta(x + 1.0, y * lo, y * hi))

    def _trivial(self) -> bool:
        return self.arrival_rate == 0 or self.agents == 0

    # -- measures ------------------------------------------------------------------------------

    @property
    def load(self) -> float:
        """Offered load ``R = λ/μ`` in Erlangs."""
        return self.arrival_rate / self.service_rate

    @property
    def p_wait(self) -> float:
        """``P{W > 0}``: the probability that an arrival finds all agents busy ([MZ] §4.4)."""
        if self.arrival_rate == 0:
            return 0.0
        if self.agents == 0:
            return 1.0
        c = self._erlang_c()
        if c is not None:
            return c.p_wait
        return min(1.0, self._g(0.0, 1.0))

    @property
    def p_abandon(self) -> float:
        """``P{Ab}``: the probability that a caller hangs up before an agent answers ([MZ] §4.5)."""
        if self.arrival_rate == 0:
            return 0.0
        if self.agents == 0:
            return 1.0
        if self._erlang_c() is not None:
            return 0.0
        return min(1.0, max(0.0, self._g(0.0, 1.0) - self._h(0.0, 1.0)))

    @property
    def p_served(self) -> float:
        """``1 − P{Ab}``: the probability that a caller is eventually answered."""
        return 1.0 - self.p_abandon

    def p_answered_within(self, t: float) -> float:
        """``P{answered and W ≤ t}``: the Erlang A service level counting abandons as misses."""
        if self.arrival_rate == 0:
            return 1.0
        if self.agents == 0:
            return 0.0
        ec = self._erlang_c()
        if ec is not None:
            return ec.service_level(t)
        c = math.exp(-self.patience_rate * t)
        return min(1.0, max(0.0, 1.0 - self.p_wait + self._h(c, 1.0)))

    def p_abandon_within(self, s: float) -> float:
        """``P{abandoned with W < s}``: the model's share of short abandons (SPEC §3, ``S``)."""
        if self.arrival_rate == 0 or s <= 0:
            return 0.0
        if self.agents == 0:
            return -math.expm1(-self.patience_rate * s)
        if self._erlang_c() is not None:
            return 0.0
        c = math.exp(-self.patience_rate * s)
        value = (1.0 - c) * self._g(0.0, c) + self._g(c, 1.0) - self._h(c, 1.0)
        return min(1.0, max(0.0, value))

    def p_wait_within(self, t: float) -> float:
        """``P{W ≤ t}`` for the actual wait ``W = min(V, τ)`` (answered or abandoned by ``t``)."""
        if self.arrival_rate == 0:
            return 1.0
        if self.agents == 0:
            return -math.expm1(-self.patience_rate * t)
        ec = self._erlang_c()
        if ec is not None:
            return ec.service_level(t)
        c = math.exp(-self.patience_rate * t)
        return min(1.0, max(0.0, 1.0 - c * self._g(0.0, c)))

    @property
    def mean_wait(self) -> float:
        """``E[W]`` over all callers, answered or not: ``P{Ab}/θ`` ([MZ] §4.6)."""
        ec = self._erlang_c()
        if ec is not None:
            return ec.asa
        if self.arrival_rate == 0:
            return 0.0
        if self.agents == 0:
            return 1.0 / self.patience_rate
        return self.p_abandon / self.patience_rate

    @property
    def asa(self) -> float:
        """Average speed of answer: ``E[W | answered]`` (zero waits included).

        With ``Z = e^{-θV}`` of density ``g``: ``E[V; answered] = (1/θ) ∫_0^1 (−ln z) z g(z) dz``
        and ``∫_0^1 (−ln z) z^(a−1) e^(−yz) dz = −∂/∂a [y^−a γ(a, y)]``, so with
        ``f(a) = log(y^−a γ(a, y))`` it is ``(served after waiting) · (−f'(x + 1))/θ``; ``f'`` is
        taken by a central difference of the log-space incomplete gamma (relative error ~1e-8).
        """
        ec = self._erlang_c()
        if ec is not None:
            return ec.asa
        if self.arrival_rate == 0:
            return 0.0
        served = self.p_served
        if self.agents == 0 or served <= 0:
            return math.inf
        a, y = self._x + 1.0, self._y

        def f(u: float) -> float:
            return -u * math.log(y) + math.lgamma(u) + _log_gamma_p_q(u, y)[0]

        h = 1e-4 * max(1.0, math.sqrt(a))
        slope = (f(a + h) - f(a - h)) / (2.0 * h)
        return self._h(0.0, 1.0) * max(0.0, -slope) / self.patience_rate / served

    # -- SPEC §3 KPIs, as the model sees them ---------------------------------------------------

    def manual_connection_rate(self, short_abandon: float) -> float:
        """Model manual connection rate: see :func:`model_manual_connection_rate`."""
        return model_manual_connection_rate(self, short_abandon)

    def service_level(self, threshold: float, short_abandon: float) -> float:
        """Model service level: see :func:`model_service_level`."""
        return model_service_level(self, threshold, short_abandon)

    def abandon_rate(self, short_abandon: float) -> float:
        """Model abandon rate: see :func:`model_abandon_rate`."""
        return model_abandon_rate(self, short_abandon)


def erlang_a(n: int, arrival_rate: float, service_rate: float, patience_rate: float) -> ErlangA:
    """Erlang A (M/M/n+M) model with ``n`` agents; ``patience_rate = 1/mean patience``.

    ``patience_rate = 0`` means callers never hang up: the model is then Erlang C.
    """
    _check_rates(n, arrival_rate, service_rate)
    if patience_rate < 0 or not math.isfinite(patience_rate):
        raise ValueError(f"patience rate must be finite and >= 0, got {patience_rate}")
    if arrival_rate == 0 or n == 0 or patience_rate == 0:
        return ErlangA(n, arrival_rate, service_rate, patience_rate, 0.0)
    x = n * service_rate / patience_rate
    if x > _X_ERLANG_C:
        return ErlangA(n, arrival_rate, service_rate, patience_rate, 0.0)
    log_b = log_erlang_b(n, arrival_rate / service_rate)
    return _erlang_a_from_log_b(n, arrival_rate, service_rate, patience_rate, log_b)


def _erlang_a_from_log_b(n: int, lam: float, mu: float, theta: float, log_b: float) -> ErlangA:
    """:func:`erlang_a` with ``log E_B(n, R)`` already known (staffing scans reuse it)."""
    if lam == 0 or n == 0 or theta == 0 or n * mu / theta > _X_ERLANG_C:
        return ErlangA(n, lam, mu, theta, 0.0)
    return ErlangA(n, lam, mu, theta, _log_scale(n, lam, mu, theta, log_b))


def _log_scale(n: int, lam: float, mu: float, theta: float, log_b: float) -> float:
    """``log(π_n K)`` with ``K = e^y y^-x Γ(x+1)`` and ``π_n = E_B/(1 + (A − 1)E_B)``."""
    x, y = n * mu / theta, lam / theta
    log_k = y - x * math.log(y) + math.lgamma(x + 1.0)
    log_a = log_k + _log_gamma_p_q(x, y)[0]
    # 1 + (A − 1)E_B = (1 − E_B) + A·E_B
    log_den = _logaddexp(_log1mexp(log_b), log_a + log_b)
    return log_b - log_den + log_k


# --------------------------------------------------------------------------------------------
# SPEC §3 KPIs in the model, and staffing
# --------------------------------------------------------------------------------------------


def model_manual_connection_rate(model: ErlangA, short_abandon: float) -> float:
    """Manual connection rate as SPEC §3 counts it, predicted by the model.

    SPEC §3: answered / (queued − short abandons), a short abandon being an abandon with wait
    ``< S``. In the model a queued call is answered with probability ``1 − P{Ab}`` and is a short
    abandon with probability ``P{Ab, W < S}``, so by the law of large numbers the ratio tends to::

        MCR(n) = (1 − P{Ab}) / (1 − P{Ab, W < S})

    that is, ``P(answered | not a short abandon)``. It increases with ``n``: it equals
    ``1 − P{Ab, W ≥ S}/(1 − P{Ab, W < S})`` and both terms move the right way.
    """
    denominator = 1.0 - model.p_abandon_within(short_abandon)
    if denominator <= 0:
        return 0.0
    return min(1.0, model.p_served / denominator)


def model_service_level(model: ErlangA, threshold: float, short_abandon: float) -> float:
    """Service level as SPEC §3 counts it: ``P{answered, W ≤ T} / (1 − P{Ab, W < S})``."""
    denominator = 1.0 - model.p_abandon_within(short_abandon)
    if denominator <= 0:
        return 0.0
    return min(1.0, model.p_answered_within(threshold) / denominator)


def model_abandon_rate(model: ErlangA, short_abandon: float) -> float:
    """Abandon rate as SPEC §3 counts it: ``P{Ab, W ≥ S} / (1 − P{Ab, W < S})``."""
    short = model.p_abandon_within(short_abandon)
    denominator = 1.0 - short
    if denominator <= 0:
        return 0.0
    return min(1.0, max(0.0, model.p_abandon - short) / denominator)


def agents_needed(
    arrival_rate: float,
    service_rate: float,
    patience_rate: float,
    *,
    kpi: Kpi,
    target: float,
    short_abandon: float = 5.0,
    service_level_threshold: float = 20.0,
    max_agents: int = 10_000,
) -> int | None:
    """Smallest ``n`` whose Erlang A prediction of ``kpi`` (SPEC §3 form) is ``≥ target``.

    ``kpi`` is ``"manual_connection_rate"`` (:func:`model_manual_connection_rate`) or
    ``"service_level"`` (:func:`model_service_level`). With ``patience_rate = 0`` the model is
    Erlang C and at least ``⌊R⌋ + 1`` agents are required for a stable queue. Returns ``None``
    when no ``n ≤ max_agents`` reaches the target. Both KPIs increase with ``n``: the search
    gallops upward and bisects (see the body), the Erlang B values carried by its recursion.
    """
    if not 0.0 <= target <= 1.0:
        raise ValueError(f"target must be within [0, 1], got {target}")
    _check_rates(0, arrival_rate, service_rate)
    if arrival_rate == 0:
        return 0
    load = arrival_rate / service_rate
    start = math.floor(load + _LOAD_SLACK) + 1 if patience_rate == 0 else 0
    if start > max_agents:
        return None
    logs = [log_erlang_b(start, load)]  # log E_B(start + i), extended by the recursion
    log_load = math.log(load)

    def meets(n: int) -> bool:
        while start + len(logs) <= n:  # one step of the Erlang B recursion (see log_erlang_b)
            logs.append(-_logaddexp(0.0, math.log(start + len(logs)) - log_load - logs[-1]))
        model = _erlang_a_from_log_b(n, arrival_rate, service_rate, patience_rate, logs[n - start])
        if kpi == "manual_connection_rate":
            value = model_manual_connection_rate(model, short_abandon)
        else:
            value = model_service_level(model, service_level_threshold, short_abandon)
        return value >= target

    # Both KPIs increase with n, so the smallest n that meets the target is found by doubling
    # the step until one does, then halving between the last that did not and it: about
    # 2·log2(n) model evaluations instead of n (a month of 9 million calls needs agents in the
    # hundreds per interval). tests/unit/test_erlang.py checks it against the plain upward scan.
    below, step, n = start - 1, 1, start
    while not meets(n):
        below = n
        if n == max_agents:
            return None
        n = min(max_agents, n + step)
        step *= 2
    while n - below > 1:
        middle = (below + n) // 2
        if meets(middle):
            n = middle
        else:
            below = middle
    return n


def erlang_c_agents_needed(
    arrival_rate: float,
    service_rate: float,
    *,
    target_service_level: float,
    service_level_threshold: float = 20.0,
    max_agents: int = 10_000,
) -> int | None:
    """Smallest stable ``n`` with Erlang C ``P{W ≤ T} ≥ target`` (the classic staffing figure).

    Erlang C ignores abandonment, so it overstates the agents needed when callers hang up
    ([GMR] §1); it is reported beside Erlang A for comparison.
    """
    if not 0.0 <= target_service_level <= 1.0:
        raise ValueError(f"target must be within [0, 1], got {target_service_level}")
    _check_rates(0, arrival_rate, service_rate)
    if arrival_rate == 0:
        return 0
    for n in range(math.floor(arrival_rate / service_rate + _LOAD_SLACK) + 1, max_agents + 1):
        if (
            erlang_c(n, arrival_rate, service_rate).service_level(service_level_threshold)
            >= target_service_level
        ):
            return n
    return None
