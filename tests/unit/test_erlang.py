"""Erlang B/C/A against published reference values, limits, a birth–death chain and a simulation.

References used (see ``docs/staffing.md``):

- Erlang B tables (1% grade of service): 10 circuits carry 4.46 E, 100 circuits carry 84.06 E;
  Wolfram's ErlangB example: 30 lines at 25 E block ≈ 0.05.
- Erlang C: Call Centre Helper's worked example (100 calls per 30 min, AHT 180 s, i.e. 10 E):
  with 11 agents P(wait) = 0.6821, service level 20 s = 39.0%, ASA = 122.8 s. Abstract Micro
  Systems' Erlang Library for Excel, ``ErlcWait4`` help page: 20 agents, 1800 s period, 100
  calls, AHT 240 s → 2.243505841 s; AHT 300 s → 30.4312286 s.
- Erlang A: Mandelbaum & Zeltyn (2005), §3: with θ = μ the number in system of M/M/n+M is
  Poisson(R) (the M/M/∞ chain), so P{W>0} = P{Poisson(R) ≥ n} and P{Ab} = E[(L−n)+]/R; limits
  θ → 0 (Erlang C) and θ → ∞ (Erlang B, callers who find all agents busy leave at once).
"""

from __future__ import annotations

import heapq
import itertools
import math
import random
from decimal import Decimal, localcontext
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hotline_kpi.metrics.erlang import (
    agents_needed,
    erlang_a,
    erlang_b,
    erlang_c,
    erlang_c_agents_needed,
    log_erlang_b,
    model_abandon_rate,
    model_manual_connection_rate,
    model_service_level,
)

# -- Erlang B ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("circuits", "load"),
    [(10, 4.46), (100, 84.06)],
)
def test_erlang_b_matches_the_one_percent_column_of_erlang_b_tables(
    circuits: int, load: float
) -> None:
    # Table loads are rounded to 0.01 E; dB/dA is below 0.02 per Erlang here.
    assert erlang_b(circuits, load) == pytest.approx(0.01, abs=1e-4)


def test_erlang_b_matches_wolfram_example_thirty_lines_twenty_five_erlangs() -> None:
    assert erlang_b(30, 25.0) == pytest.approx(0.0526, abs=5e-4)


def test_log_erlang_b_stays_finite_where_erlang_b_underflows() -> None:
    value = log_erlang_b(500, 1.0)
    # E_B(500, 1) = (1/500!) / Σ 1/k!  ≈ e^{-1}/500!
    assert value == pytest.approx(-math.lgamma(501) - 1.0, rel=1e-12)


# -- Erlang C ---------------------------------------------------------------------------------


def test_erlang_c_reproduces_call_centre_helper_worked_example() -> None:
    lam, mu = 100 / 1800, 1 / 180  # 10 Erlangs
    model = erlang_c(11, lam, mu)
    assert model.p_wait == pytest.approx(0.6821, abs=5e-5)
    assert model.service_level(20) == pytest.approx(0.390, abs=5e-4)
    assert model.asa == pytest.approx(122.8, abs=0.05)


@pytest.mark.parametrize(("aht", "expected"), [(240, 2.243505841), (300, 30.4312286)])
def test_erlang_c_asa_reproduces_abstract_micro_erlcwait4(aht: float, expected: float) -> None:
    assert erlang_c(20, 100 / 1800, 1 / aht).asa == pytest.approx(expected, rel=1e-7)


def test_erlang_c_unstable_queue_waits_forever() -> None:
    model = erlang_c(10, 1.0, 0.1)  # R = 10 = n
    assert model.p_wait == 1.0
    assert model.asa == math.inf
    assert model.service_level(20) == 0.0


def test_erlang_c_staffing_for_80_20_in_the_worked_example_is_14_agents() -> None:
    # Call Centre Helper: 80% in 20 s needs 14 agents at 10 Erlangs with AHT 180 s.
    assert erlang_c_agents_needed(100 / 1800, 1 / 180, target_service_level=0.8) == 14


def _erlang_c_exact(n: int, load: Fraction) -> Fraction:
    """Textbook Erlang C in exact rationals: ``(Rⁿ/n! · n/(n−R)) / (Σ_{k<n} Rᵏ/k! + that)``."""
    top = load**n / math.factorial(n) * n / (n - load)
    return top / (sum(load**k / math.factorial(k) for k in range(n)) + top)


@pytest.mark.parametrize(
    ("n", "lam", "mu"),
    [(1, 0.5, 1.0), (3, 0.75, 0.5), (11, 0.625, 0.0625), (20, 1.5, 0.125), (45, 5.0, 0.125)],
)
def test_erlang_c_equals_the_textbook_formula_in_exact_fractions(
    n: int, lam: float, mu: float
) -> None:
    # The rates are binary fractions, so R = λ/μ is exact and so is the reference.
    exact = _erlang_c_exact(n, Fraction(lam) / Fraction(mu))
    model = erlang_c(n, lam, mu)
    assert model.p_wait == pytest.approx(float(exact), rel=1e-12)
    asa = exact / (n * Fraction(mu) - Fraction(lam))
    assert model.asa == pytest.approx(float(asa), rel=1e-12)


# -- Erlang A: exact identities and limits ----------------------------------------------------


def _poisson_pmf(k: int, mean: float) -> float:
    return math.exp(k * math.log(mean) - mean - math.lgamma(k + 1))


@pytest.mark.parametrize(("n", "load"), [(11, 10.0), (50, 48.0), (300, 290.0)])
def test_erlang_a_with_patience_equal_to_handle_time_is_poisson(n: int, load: float) -> None:
    model = erlang_a(n, load, 1.0, 1.0)
    p_wait = 1.0 - sum(_poisson_pmf(j, load) for j in range(n))
    queue = sum((j - n) * _poisson_pmf(j, load) for j in range(n, n + 2000))
    assert model.p_wait == pytest.approx(p_wait, rel=1e-9)
    assert model.p_abandon == pytest.approx(queue / load, rel=1e-9)
    assert model.mean_wait == pytest.approx(queue / load, rel=1e-9)  # E[W] = E[Q]/λ


@pytest.mark.parametrize(("n", "load"), [(3, 2), (11, 10), (40, 37), (120, 100), (400, 380)])
def test_erlang_a_poisson_case_matches_fifty_digit_decimal_sums(n: int, load: int) -> None:
    # θ = μ: P{W>0} = P{L ≥ n} and P{Ab} = E[(L − n)⁺]/R with L ~ Poisson(R) ([MZ] §3), both
    # finite sums over k < n (E[(L−n)⁺] = R − n + Σ_{k<n} (n−k) p_k), evaluated in 50 digits.
    with localcontext() as ctx:
        ctx.prec = 50
        r = Decimal(load)
        pmf = [(-r).exp()]
        for k in range(1, n):
            pmf.append(pmf[-1] * r / k)
        p_wait = 1 - sum(pmf)
        p_abandon = (r - n + sum((n - k) * p for k, p in enumerate(pmf))) / r
    model = erlang_a(n, float(load), 1.0, 1.0)
    assert model.p_wait == pytest.approx(float(p_wait), rel=1e-12)
    assert model.p_abandon == pytest.approx(float(p_abandon), rel=1e-12)


def _birth_death_log(n: int, lam: float, mu: float, theta: float) -> tuple[float, float]:
    """:func:`_birth_death` with log-space weights, for loads whose weights overflow a float."""
    logs = [0.0]
    for j in range(1, n + 20000):
        logs.append(logs[-1] + math.log(lam / (min(j, n) * mu + max(0, j - n) * theta)))
    top = max(logs)
    weights = [math.exp(v - top) for v in logs]
    total = math.fsum(weights)
    p_wait = math.fsum(weights[n:]) / total
    queue = math.fsum((j - n) * w for j, w in enumerate(weights) if j > n) / total
    return p_wait, theta * queue / lam


@pytest.mark.parametrize(
    ("n", "lam", "mu", "theta"),
    # x = nμ/θ of 10⁴–10⁵: P(x, y) is 5e-33 in the first case and below the smallest double in
    # the second (π_n K far above the largest), so the kernels must work in logarithms.
    [(1875, 33.95, 1 / 53, 1 / 2400), (200, 5.0, 1 / 30, 1 / 3600)],
)
def test_erlang_a_with_very_patient_callers_matches_the_chain_in_log_space(
    n: int, lam: float, mu: float, theta: float
) -> None:
    p_wait, p_abandon = _birth_death_log(n, lam, mu, theta)
    model = erlang_a(n, lam, mu, theta)
    assert model.p_wait == pytest.approx(p_wait, rel=1e-9)
    # P{Ab} is there the difference of two integrals equal to 4–6 digits, which costs as many.
    assert model.p_abandon == pytest.approx(p_abandon, rel=1e-6)


def _birth_death(n: int, lam: float, mu: float, theta: float) -> tuple[float, float]:
    """P{W>0} and P{Ab} from the truncated M/M/n+M chain, by brute force ([MZ] §3)."""
    weights = [1.0]
    for j in range(1, n + 4000):
        weights.append(weights[-1] * lam / (min(j, n) * mu + max(0, j - n) * theta))
    total = sum(weights)
    p_wait = sum(weights[n:]) / total
    queue = sum((j - n) * w for j, w in enumerate(weights) if j > n) / total
    return p_wait, theta * queue / lam


@pytest.mark.parametrize(
    ("n", "lam", "mu", "theta"),
    [(11, 100 / 1800, 1 / 180, 1 / 60), (20, 0.12, 1 / 180, 1 / 120), (5, 0.1, 0.02, 0.5)],
)
def test_erlang_a_matches_brute_force_birth_death_chain(
    n: int, lam: float, mu: float, theta: float
) -> None:
    p_wait, p_abandon = _birth_death(n, lam, mu, theta)
    model = erlang_a(n, lam, mu, theta)
    assert model.p_wait == pytest.approx(p_wait, rel=1e-9)
    assert model.p_abandon == pytest.approx(p_abandon, rel=1e-9)


def test_erlang_a_tends_to_erlang_c_as_patience_grows() -> None:
    lam, mu = 100 / 1800, 1 / 180
    c = erlang_c(11, lam, mu)
    a = erlang_a(11, lam, mu, 1e-7)
    assert a.p_wait == pytest.approx(c.p_wait, rel=1e-3)
    assert a.p_answered_within(20) == pytest.approx(c.service_level(20), rel=1e-3)
    assert a.asa == pytest.approx(c.asa, rel=1e-3)
    assert erlang_a(11, lam, mu, 0.0).p_abandon == 0.0


def test_erlang_a_tends_to_erlang_b_as_patience_vanishes() -> None:
    model = erlang_a(10, 8.0, 1.0, 1e6)
    assert model.p_abandon == pytest.approx(erlang_b(10, 8.0), rel=1e-4)
    assert model.p_answered_within(1.0) == pytest.approx(1 - erlang_b(10, 8.0), rel=1e-4)


def test_erlang_a_edge_cases_have_plain_answers() -> None:
    nobody = erlang_a(0, 1.0, 0.1, 0.5)
    assert (nobody.p_wait, nobody.p_abandon, nobody.p_answered_within(20)) == (1.0, 1.0, 0.0)
    assert nobody.p_abandon_within(2.0) == pytest.approx(1 - math.exp(-1.0))
    idle = erlang_a(3, 0.0, 0.1, 0.5)
    assert (idle.p_wait, idle.p_abandon, idle.p_answered_within(0)) == (0.0, 0.0, 1.0)
    with pytest.raises(ValueError, match="service rate"):
        erlang_a(3, 1.0, 0.0, 0.5)


def test_erlang_a_is_consistent_internally() -> None:
    model = erlang_a(30, 0.17, 1 / 180, 1 / 90)
    # every caller either is answered without waiting, is answered after waiting or abandons
    assert model.p_answered_within(1e9) == pytest.approx(model.p_served, abs=1e-12)
    assert model.p_abandon_within(1e9) == pytest.approx(model.p_abandon, abs=1e-12)
    assert model.p_wait_within(0.0) == pytest.approx(1 - model.p_wait, abs=1e-12)
    assert model.p_answered_within(0.0) == pytest.approx(1 - model.p_wait, abs=1e-12)


# -- stability for hundreds of agents ---------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(min_value=1, max_value=800),
    utilisation=st.floats(min_value=0.3, max_value=1.5),
    aht=st.floats(min_value=30, max_value=900),
    patience=st.floats(min_value=5, max_value=3600),
)
def test_erlang_a_is_finite_and_monotone_in_agents(
    n: int, utilisation: float, aht: float, patience: float
) -> None:
    mu, theta = 1 / aht, 1 / patience
    lam = utilisation * n * mu
    now, more = erlang_a(n, lam, mu, theta), erlang_a(n + 1, lam, mu, theta)
    for model in (now, more):
        for value in (
            model.p_wait,
            model.p_abandon,
            model.p_answered_within(20),
            model.p_abandon_within(5),
            model.p_wait_within(20),
            model.asa,
            model_manual_connection_rate(model, 5),
            model_service_level(model, 20, 5),
            model_abandon_rate(model, 5),
        ):
            assert math.isfinite(value)
            assert value >= 0
    tol = 1e-9
    assert more.p_wait <= now.p_wait + tol
    assert more.p_abandon <= now.p_abandon + tol
    assert more.p_answered_within(20) >= now.p_answered_within(20) - tol
    assert model_manual_connection_rate(more, 5) >= model_manual_connection_rate(now, 5) - tol
    assert model_service_level(more, 20, 5) >= model_service_level(now, 20, 5) - tol
    assert more.asa <= now.asa * (1 + 1e-6) + tol


# -- simulation -------------------------------------------------------------------------------


def _simulate(
    n: int, lam: float, mu: float, theta: float, calls: int, seed: int, s: float, t: float
) -> tuple[float, float, float]:
    """M/M/n+M, FCFS, exact: a caller's wait is decided by the earliest time an agent is free.

    An abandoning caller consumes no agent time, so the earliest free time is all that matters.
    Returns (abandon share, SPEC manual connection rate, SPEC service level).
    """
    rng = random.Random(seed)
    free = [0.0] * n
    now = 0.0
    answered = within = short = abandoned = 0
    warmup = calls // 20
    for i in range(calls + warmup):
        now += rng.expovariate(lam)
        wait = max(0.0, free[0] - now) if n else math.inf
        patience = rng.expovariate(theta)
        counted = i >= warmup
        if wait > patience:
            if counted:
                abandoned += 1
                short += patience < s
            continue
        heapq.heapreplace(free, now + wait + rng.expovariate(mu))
        if counted:
            answered += 1
            within += wait <= t
    eligible = calls - short
    return abandoned / calls, answered / eligible, within / eligible


# 10 Erlangs (AHT 180 s), mean patience 60 s: a small, busy queue where abandonment matters.
LAM, MU, THETA = 100 / 1800, 1 / 180, 1 / 60


def test_erlang_a_predicts_simulated_abandonment_and_service_level() -> None:
    # 60 000 calls: the standard error of each share is below 0.004 (batch means), so a
    # tolerance of 0.015 is about four standard errors; the seed makes the test deterministic.
    model = erlang_a(10, LAM, MU, THETA)
    abandon, mcr, sl = _simulate(10, LAM, MU, THETA, 60_000, seed=11, s=5, t=20)
    assert abandon == pytest.approx(model.p_abandon, abs=0.015)
    assert mcr == pytest.approx(model_manual_connection_rate(model, 5), abs=0.015)
    assert sl == pytest.approx(model_service_level(model, 20, 5), abs=0.015)


def test_advised_agents_are_within_one_of_the_smallest_simulated_count() -> None:
    advised = agents_needed(LAM, MU, THETA, kpi="manual_connection_rate", target=0.9)
    assert advised is not None
    simulated = None
    for n in range(max(1, advised - 2), advised + 3):
        _, mcr, _ = _simulate(n, LAM, MU, THETA, 30_000, seed=n, s=5, t=20)
        if mcr >= 0.9:
            simulated = n
            break
    assert simulated is not None
    assert abs(advised - simulated) <= 1

    advised_sl = agents_needed(LAM, MU, THETA, kpi="service_level", target=0.8)
    assert advised_sl is not None
    simulated_sl = None
    for n in range(max(1, advised_sl - 2), advised_sl + 3):
        _, _, sl = _simulate(n, LAM, MU, THETA, 30_000, seed=100 + n, s=5, t=20)
        if sl >= 0.8:
            simulated_sl = n
            break
    assert simulated_sl is not None
    assert abs(advised_sl - simulated_sl) <= 1


def test_erlang_a_needs_fewer_agents_than_erlang_c_when_callers_hang_up() -> None:
    a = agents_needed(LAM, MU, THETA, kpi="service_level", target=0.8)
    c = erlang_c_agents_needed(LAM, MU, target_service_level=0.8)
    assert a is not None and c is not None
    assert a <= c


def test_agents_needed_scales_to_thousands_of_erlangs() -> None:
    lam, mu, theta = 400 / 60, 1 / 300, 1 / 60  # 2000 Erlangs
    n = agents_needed(lam, mu, theta, kpi="manual_connection_rate", target=0.9)
    assert n is not None
    model = erlang_a(n, lam, mu, theta)
    assert model_manual_connection_rate(model, 5) >= 0.9
    assert model_manual_connection_rate(erlang_a(n - 1, lam, mu, theta), 5) < 0.9


def test_agents_needed_edge_cases() -> None:
    assert agents_needed(0.0, MU, THETA, kpi="service_level", target=0.8) == 0
    assert agents_needed(LAM, MU, THETA, kpi="service_level", target=0.8, max_agents=5) is None
    # no abandonment observed: Erlang C, which needs a stable queue
    assert agents_needed(LAM, MU, 0.0, kpi="manual_connection_rate", target=0.9) == 11
    with pytest.raises(ValueError, match="target"):
        agents_needed(LAM, MU, THETA, kpi="service_level", target=80)


def _scanned(arrival: float, service: float, patience: float, kpi: str, target: float) -> int:
    """The smallest n meeting the target by evaluating every n upward (the search before it
    galloped): the reference for agents_needed."""
    start = math.floor(arrival / service + 1e-9) + 1 if patience == 0 else 0
    for n in range(start, 10_001):
        model = erlang_a(n, arrival, service, patience)
        if kpi == "manual_connection_rate":
            value = model_manual_connection_rate(model, 5.0)
        else:
            value = model_service_level(model, 20.0, 5.0)
        if value >= target:
            return n
    raise AssertionError("no n met the target")


@pytest.mark.parametrize("kpi", ["manual_connection_rate", "service_level"])
def test_the_galloping_search_finds_what_scanning_every_n_finds(kpi: str) -> None:
    """Loads from a fraction of an agent to 1,500 Erlang, with and without patience, targets
    from lax to strict: the same n as the upward scan."""
    for load, patience, target in itertools.product(
        (0.3, 2.5, 17.0, 140.0, 1_500.0), (0.0, 1 / 60, 1 / 300), (0.5, 0.8, 0.9, 0.99)
    ):
        service = 1 / 180
        arrival = load * service
        expected = _scanned(arrival, service, patience, kpi, target)
        got = agents_needed(arrival, service, patience, kpi=kpi, target=target)  # type: ignore[arg-type]
        assert got == expected, (load, patience, target)
