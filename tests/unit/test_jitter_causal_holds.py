"""The benchmark's best causal buffer on a network that holds packets
(bench/_jitter_causal_holds.py): its model against its policies replayed on traces of
the generator itself, its bound against buffers that can be played, and its reduction
to the jitter-only model when nothing is held. Small holds and gaps keep it fast."""

from __future__ import annotations

import functools
import importlib
import sys
from pathlib import Path

import numpy as np
import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"
if str(BENCH) not in sys.path:
    sys.path.insert(0, str(BENCH))
jc = importlib.import_module("_jitter_causal")
jh = importlib.import_module("_jitter_causal_holds")
jt = importlib.import_module("_jitter_traces")

BLOCK_MS, SLEW_MS, PHASE_MS = 10, 2, 5  # the benchmark's ticks fall mid-block
GAP_S, HOLD_S = (0.3, 0.6), (0.03, 0.08)


def _gen(gap_s=GAP_S, hold_s=HOLD_S):
    return functools.partial(jt.wifi, gap_s=gap_s, hold_s=hold_s)


def _trace(seed: int, seconds: float, gen=None) -> jt.Trace:
    return jt.custom_trace("holds", gen or _gen(), seconds, BLOCK_MS / 1000.0, seed=seed)


def _delays_ms(tr: jt.Trace) -> np.ndarray:
    return (tr.arrival_s - tr.send_s - tr.min_delay_s) * 1000.0


def _law(gen=None, seed: int = 7, chunks: int = 10) -> jh.HoldLaw:
    runs = (_trace(seed * 100 + i, 300.0, gen) for i in range(chunks))
    return jh.learn_law(((t.send_s, t.arrival_s) for t in runs), BLOCK_MS, PHASE_MS)


@pytest.fixture(scope="module")
def law():
    return _law()


@pytest.fixture(scope="module")
def model(law):
    return jh.build(law, SLEW_MS)


@pytest.fixture(scope="module")
def long_delays():
    return _delays_ms(_trace(99, 1000.0))


def test_the_law_is_learnt_from_the_generator(law):
    # Holds of 30..80 ms: the release tick 5 + 10 m ms after the first held slot, both
    # on their lattices (m in 2..8; a jittered packet can be first held a slot early).
    support = np.nonzero(law.hold_pmf)[0]
    assert support.min() >= 2 and support.max() <= 9
    # Gaps of 0.3..0.6 s from the release: the next first held slot 5 + 10 i ms on.
    gaps = np.nonzero(law.gap_pmf)[0]
    assert gaps.min() >= 28 and gaps.max() <= 60
    assert law.holds > 3000
    # 1 ms jitter centred 2 ms up: late at the first tick (X > 5 ms) about 0.13 % of the time.
    assert 0.997 < law.on_time < 0.9995
    assert law.jitter_max_ms < BLOCK_MS


def test_the_network_chain_is_a_probability_law(model):
    for p in (model.net.p1, model.net.p2):
        assert np.allclose(np.asarray(p.sum(axis=1)).ravel(), 1.0)
    # A cycle (gap plus hold) is some 0.5 s: that many ticks between a sweep's cuts.
    assert 40 < model.net.ticks_per_sweep < 60


def test_the_model_predicts_what_its_policy_does_on_the_generator(model, long_delays):
    # The policy is played on a long trace the generator draws apart from the law, its
    # state read from the arrivals (a causal buffer): the average it reaches must be the
    # model's (a wrong transition law or state reading would show here).
    v = g = None
    for lam in (300.0, 3000.0):
        lo, hi, v, g = jh.solve(model, lam, v, g)
        assert lo <= hi + 1e-9
        r = jh.run(model, jh.policy(model, lam, v), long_delays, model.dmax)
        assert r.average(lam) == pytest.approx(lo, rel=0.03)
        assert 0.0 < r.replay.concealed_pct < 10.0


def test_a_wrong_law_is_caught_by_its_replay(long_delays):
    # Told holds of 10..30 ms when they last 30..80 ms, the model promises an average
    # its own policy does not reach on the real network.
    wrong = jh.build(_law(_gen(hold_s=(0.01, 0.03)), seed=8, chunks=4), SLEW_MS)
    lam = 3000.0
    lo, _, v, _ = jh.solve(wrong, lam)
    r = jh.run(wrong, jh.policy(wrong, lam, v), long_delays, wrong.dmax)
    assert r.average(lam) > 1.1 * lo


def _constant(delays_ms: np.ndarray, d_ms: int) -> tuple[float, float]:
    """(mean delay, concealed %) of a buffer holding delay ``d_ms`` and dropping late
    packets, ticks on the model's lattice."""
    lat = jc.lattice_floor(np.array([d_ms]), PHASE_MS, BLOCK_MS)[0]
    return float(d_ms), 100.0 * float(np.mean(delays_ms > lat + 1e-9))


def test_no_constant_delay_beats_the_bound(model, long_delays):
    points = jh.frontier(model, _delays_ms(_trace(5, 60.0)), np.geomspace(30.0, 3e4, 10))
    for d_ms in (15, 35, 55, 75, 95):
        mean, pct = _constant(long_delays, d_ms)
        assert jc.bound_at(points, pct) <= mean
    # Knowing the hold law is worth a lot: far below the constant delay that conceals
    # no more (the next hold cannot start in the first 0.3 s after a burst).
    mean, pct = _constant(long_delays, 75)
    assert jc.bound_at(points, pct) < 0.8 * mean
    # The optimal policies, replayed, reach the bound's neighbourhood and no lower.
    for pt in points:
        rp = pt.replayed
        assert jc.bound_at(points, rp.concealed_pct + 0.3) <= rp.mean_ms + 1.0


def test_the_policy_sheds_the_burst_and_grows_before_the_next_hold(model):
    lam = 300.0
    _, _, v, _ = jh.solve(model, lam)
    walk = jh.gap_walk(model, jh.policy(model, lam, v), 40)
    # From 40 ms at a release it sheds its delay at the slew (2 ms a tick) to the
    # first tick (5 ms), and grows it again as the earliest next hold (0.3 s after the
    # release, tick 28) nears, and on while the hazard grows.
    assert walk[10] <= 20 and walk[20] == PHASE_MS
    assert walk[40] > walk[20] + 10
    assert walk[58] >= walk[40]


def test_without_holds_it_is_the_jitter_only_model():
    # No holds: the model is the independent-delay one (bench/_jitter_causal.py) for a
    # jitter law with the same chance of missing the first tick, and both match.
    q = 0.9
    law = jh.HoldLaw(BLOCK_MS, PHASE_MS, q, 6.0, None, None, 0)
    m = jh.build(law, SLEW_MS)
    pmf = np.zeros(7)
    pmf[0], pmf[6] = q, 1.0 - q
    mj = jc.build(pmf, BLOCK_MS, SLEW_MS, PHASE_MS)
    v = g = h = None
    for lam in (30.0, 300.0, 3000.0):
        lo, _, v, g = jh.solve(m, lam, v, g, tol=1e-5, sweeps=2000)
        lo_j, _, h = jc.average_cost(mj, lam, h, tol=1e-6)
        assert lo == pytest.approx(lo_j, rel=2e-3, abs=1e-3)
    # No jitter either: every packet at its first tick, PHASE_MS after its earliest.
    still = jh.build(jh.HoldLaw(BLOCK_MS, PHASE_MS, 1.0, 0.0, None, None, 0), SLEW_MS)
    points = jh.frontier(still, np.zeros(2000), [10.0, 100.0, 1000.0])
    assert jc.bound_at(points, 0.0) == pytest.approx(PHASE_MS, abs=0.05)
    assert points[-1].replayed.concealed_pct == 0.0


def test_learning_from_a_network_without_holds_finds_none():
    tr = _trace(3, 60.0, _gen(gap_s=(1e6, 2e6)))
    law = jh.learn_law([(tr.send_s, tr.arrival_s)], BLOCK_MS, PHASE_MS)
    assert law.gap_pmf is None and law.holds == 0


def test_a_coarser_grid_only_lowers_the_bound(law):
    delays = _delays_ms(_trace(6, 20.0))
    lams = np.geomspace(30.0, 3e4, 8)
    fine = jh.frontier(jh.build(law, SLEW_MS, 1), delays, lams)
    coarse = jh.frontier(jh.build(law, SLEW_MS, 2), delays, lams)
    for pct in (0.5, 1.0, 2.0, 5.0):
        assert jc.bound_at(coarse, pct) <= jc.bound_at(fine, pct) + 1e-6


def test_bad_laws_and_grids_are_refused(law):
    with pytest.raises(ValueError, match="whole grid steps"):
        jh.build(law, 1, 2)
    with pytest.raises(ValueError, match="inside the block"):
        jh.learn_law([], BLOCK_MS, 0)
    send = (np.arange(100) + 1) * 0.01
    arrival = send + 0.010 + np.where(np.arange(100) > 0, 0.016, 0.0)  # 16 ms late
    with pytest.raises(ValueError, match="less than a block"):
        jh.learn_law([(send, np.maximum.accumulate(arrival))], BLOCK_MS, PHASE_MS)
