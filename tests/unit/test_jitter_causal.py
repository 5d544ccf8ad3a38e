"""The benchmark's best causal buffer (bench/_jitter_causal.py): its model of a FIFO
network against replays on traces drawn from the same law, and its bound against
buffers that can be played."""

from __future__ import annotations

import importlib
import math
import sys
from pathlib import Path

import numpy as np
import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"
if str(BENCH) not in sys.path:
    sys.path.insert(0, str(BENCH))
jc = importlib.import_module("_jitter_causal")

BLOCK_MS, SLEW_MS, PHASE_MS = 10, 2, 5


def _raw_ms(rng: np.random.Generator, n: int, sigma_ms: float) -> np.ndarray:
    """Independent Gaussian queueing delays centred two deviations up, cut at 0."""
    return np.maximum(0.0, sigma_ms * (2.0 + rng.standard_normal(n)))


def _fifo(raw_ms: np.ndarray) -> np.ndarray:
    """Delays after one FIFO queue, above the fastest: D_k = max(X_k, D_(k-1) - T)."""
    send = np.arange(raw_ms.size) * float(BLOCK_MS)
    arrival = np.maximum.accumulate(send + raw_ms)
    return arrival - send - raw_ms.min()


@pytest.fixture(scope="module")
def gauss8():
    pmf = jc.law_from_delays(_raw_ms(np.random.default_rng(1), 400_000, 8.0))
    return jc.build(pmf, BLOCK_MS, SLEW_MS, PHASE_MS)


def _constant(delays_ms: np.ndarray, d_ms: int) -> tuple[float, float]:
    """(mean delay, concealed %) of a buffer holding delay ``d_ms`` and dropping late
    packets, ticks on the model's lattice."""
    lat = jc.lattice_floor(np.array([d_ms]), PHASE_MS, BLOCK_MS)[0]
    late = np.floor(delays_ms + 1e-9) > lat
    return float(d_ms), 100.0 * float(late.mean())


def test_the_model_predicts_what_its_policy_does_on_a_real_queue(gauss8):
    # The policy is played on a trace drawn apart from the law, through an actual FIFO
    # queue, its state read from the arrivals: the average it reaches must be the one the
    # model predicts (a wrong transition law would show here).
    lam = 400.0
    lo, hi, h = jc.average_cost(gauss8, lam)
    assert lo <= hi
    delays = _fifo(_raw_ms(np.random.default_rng(2), 200_000, 8.0))
    rp = jc.replay(gauss8, jc.policy(gauss8, lam, h), delays, 60)
    blocks = rp.played + rp.lost
    realised = (rp.mean_ms * rp.played + lam * rp.lost) / blocks
    assert realised == pytest.approx(lo, rel=0.02)
    assert 0.0 < rp.concealed_pct < 5.0


def test_no_playable_buffer_beats_the_bound(gauss8):
    delays = _fifo(_raw_ms(np.random.default_rng(3), 200_000, 8.0))
    points = jc.frontier(gauss8, delays[:20_000], np.geomspace(30.0, 3e4, 12))
    for d_ms in (25, 35, 45):
        mean, pct = _constant(delays, d_ms)
        assert jc.bound_at(points, pct) <= mean
    # The optimal policies, replayed, reach their bound's neighbourhood and no lower.
    for pt in points:
        rp = pt.replayed
        assert jc.bound_at(points, rp.concealed_pct + 0.05) <= rp.mean_ms + 0.5


def test_adapting_beats_a_constant_delay_but_not_by_magic(gauss8):
    delays = _fifo(_raw_ms(np.random.default_rng(4), 200_000, 8.0))
    points = jc.frontier(gauss8, delays[:20_000], np.geomspace(30.0, 3e4, 12))
    mean, pct = _constant(delays, 45)
    b = jc.bound_at(points, pct)
    assert 0.5 * mean < b <= mean


def test_a_network_without_jitter_needs_only_the_first_tick():
    m = jc.build(np.array([1.0]), BLOCK_MS, SLEW_MS, PHASE_MS)
    points = jc.frontier(m, np.zeros(2000), [10.0, 100.0, 1000.0])
    # Every packet is there at its earliest; the first tick after it is PHASE_MS later.
    assert jc.bound_at(points, 0.0) == pytest.approx(PHASE_MS, abs=0.05)
    assert points[-1].replayed.concealed_pct == 0.0
    assert points[-1].replayed.mean_ms == pytest.approx(PHASE_MS, abs=0.5)


def test_concealment_counts_audio_and_lost_packets():
    m = jc.build(np.array([0.5, 0.5]), BLOCK_MS, SLEW_MS, PHASE_MS)
    assert sorted({kind for kind, _ in m.moves}) == ["drop", "play", "skip", "wait"]
    for a, (kind, s) in enumerate(m.moves):
        lost = m.cost_lost[a][m.ok[a]]
        if kind == "play":
            assert np.all(lost == 0)
        elif kind == "drop":  # a packet's audio is gone even if the concealment is short
            assert np.all(lost == max(1.0, (BLOCK_MS + s) / BLOCK_MS))
        elif kind == "wait":
            assert np.all(lost == (BLOCK_MS + s) / BLOCK_MS)
        else:
            assert np.all(lost == 1.0)


def test_transition_probabilities_sum_to_one(gauss8):
    for t in gauss8.trans:
        rows = np.asarray(t.sum(axis=1)).ravel()
        assert np.allclose(rows, 1.0)


def test_a_coarser_grid_only_lowers_the_bound():
    pmf = jc.law_from_delays(_raw_ms(np.random.default_rng(5), 200_000, 8.0))
    delays = _fifo(_raw_ms(np.random.default_rng(6), 20_000, 8.0))
    lams = np.geomspace(30.0, 3e4, 10)
    fine = jc.frontier(jc.build(pmf, BLOCK_MS, SLEW_MS, PHASE_MS, 1), delays, lams)
    coarse = jc.frontier(jc.build(pmf, BLOCK_MS, SLEW_MS, PHASE_MS, 2), delays, lams)
    for pct in (0.5, 1.0, 2.0):
        assert jc.bound_at(coarse, pct) <= jc.bound_at(fine, pct) + 1e-6


def test_a_block_the_grid_cannot_slew_by_is_refused():
    with pytest.raises(ValueError, match="whole grid steps"):
        jc.build(np.array([1.0]), 10, 1, 5, 2)
    assert math.isfinite(jc.build(np.array([1.0]), 10, 2, 5, 2).cost_delay.max())
