"""The benchmark's hindsight-optimal playout schedule (bench/_jitter_oracle.py) against
brute force on small cases, and its bound against the constant-delay line."""

from __future__ import annotations

import importlib
import itertools
import math
import sys
from pathlib import Path

import numpy as np
import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"
if str(BENCH) not in sys.path:
    sys.path.insert(0, str(BENCH))
jo = importlib.import_module("_jitter_oracle")
jt = importlib.import_module("_jitter_traces")


def _brute(r_ms, block_ms: float, slew: float, lam: float) -> float:
    """min over every delay sequence on the 1 ms grid (0..top) of sum(played d) + lam *
    lost blocks, with the same moves as the programme: change by at most slew * block, or
    jump up by whole blocks (each lost) or down by one (lost); each slot plays its packet
    (d >= floor(r)) or conceals it (lost)."""
    s = round(slew * block_ms)
    b = round(block_ms)
    top = int(max(x for x in r_ms if math.isfinite(x))) + 2 * b
    req = [math.floor(x) if math.isfinite(x) else 10**9 for x in r_ms]

    def move_cost(a: int, c: int) -> float:
        best = math.inf
        for j in range(-1, top // b + 2):
            if abs(c - (a + j * b)) <= s:
                best = min(best, abs(j) * lam)
        return best

    best = math.inf
    for seq in itertools.product(range(top + 1), repeat=len(r_ms)):
        cost = 0.0
        for k, d in enumerate(seq):
            if k:
                cost += move_cost(seq[k - 1], d)
                if cost == math.inf:
                    break
            cost += min(d if d >= req[k] else math.inf, lam)
        best = min(best, cost)
    return best


@pytest.mark.parametrize("lam", [3.0, 12.0, 40.0])
@pytest.mark.parametrize(
    "r",
    [
        [0.0, 9.5, 3.0, 0.0],  # one late packet: wait for it, conceal it, or ramp up
        [2.0, 2.0, 14.2, 4.0],
        [0.0, math.inf, 7.0, 1.0],  # a lost packet must be concealed
    ],
)
def test_programme_finds_the_brute_force_optimum(r, lam):
    r_ms = np.array(r)
    got = jo.solve(r_ms, 5.0, 0.2, lam)
    assert got.delay_sum_ms + lam * got.lost == pytest.approx(_brute(r, 5.0, 0.2, lam))


def test_schedule_respects_its_constraints():
    # The back-tracked schedule's own sums match the optimum's parts.
    r = np.array([0.0, 30.0, 20.0, 10.0, 0.0, 0.0, 45.0, 35.0, 25.0, 15.0, 5.0, 0.0])
    got = jo.solve(r, 10.0, 0.2, 25.0)
    assert got.played + got.concealed == r.size
    assert got.lost >= 1  # holding 45 ms for a packet would cost more than concealing


def test_bound_lies_below_the_best_constant_delay_and_drops_with_slew():
    trace = jt.make_trace("spikes", 20.0, 0.010, 1)
    r = jo.required_ms(trace)
    # The best constant delay at 1 % lost: every packet with r above it lost.
    n = r.size
    best_const = min(
        float(np.sum(np.where(r <= d, np.floor(d), 0.0))) / n
        for d in np.arange(0.0, 400.0, 1.0)
        if np.sum(r > d) <= 0.01 * n
    )
    slow = jo.bound(r, 10.0, 0.1, 1.0)
    fast = jo.bound(r, 10.0, 0.5, 1.0)
    reactive = jo.bound(r, 10.0, 0.5, 1.0, grow=False)
    assert fast <= slow <= best_const + 1e-9
    assert fast <= reactive <= best_const + 1e-9
    assert fast < best_const  # changing the delay with foresight does pay on spikes


def test_bound_is_below_every_schedule_the_programme_finds():
    trace = jt.make_trace("wifi", 10.0, 0.010, 2)
    r = jo.required_ms(trace)
    for lam in (30.0, 300.0, 3000.0):
        s = jo.solve(r, 10.0, 0.2, lam)
        pct = 100.0 * s.lost / r.size
        assert jo.bound(r, 10.0, 0.2, pct) <= s.delay_sum_ms / r.size + 1e-9


@pytest.mark.parametrize("grow", [True, False])
def test_values_for_many_multipliers_match_the_single_solves(grow):
    trace = jt.make_trace("gauss20", 5.0, 0.010, 4)
    r = jo.required_ms(trace)
    lams = np.array([0.5, 20.0, 400.0, 1e5])
    got = jo.values(r, 10.0, 0.2, lams, grow)
    for lam, v in zip(lams, got, strict=True):
        s = jo.solve(r, 10.0, 0.2, lam, grow)
        assert v == pytest.approx(s.delay_sum_ms + lam * s.lost)


def test_slew_must_be_whole_grid_steps():
    with pytest.raises(ValueError, match="grid steps"):
        jo.solve(np.zeros(3), 10.0, 0.15, 1.0)
