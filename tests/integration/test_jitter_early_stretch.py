"""Early stretching on replayed spikes: the real receive path on a simulated clock.

Same harness as test_jitter_replay.py (bench/_jitter_sim.py, bench/_jitter_traces.py):
speech through rtai's sender, each datagram handed to the receiver at its trace time.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import numpy as np

from rtai import playout
from rtai.audio.signals import speech

BENCH = Path(__file__).resolve().parents[2] / "bench"
if str(BENCH) not in sys.path:
    sys.path.insert(0, str(BENCH))
js = importlib.import_module("_jitter_sim")
jt = importlib.import_module("_jitter_traces")

RATE, N = 16000, 160
BLOCK_S = N / RATE


def _spikes_every(every_s: float, size_s: float):
    """2 ms Gaussian jitter plus a spike of ``size_s`` every ``every_s`` (FIFO queueing
    by the trace builder makes the packets behind a spike arrive in a burst)."""

    def delay(send: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        d = jt.BASE_S + np.maximum(0.0, 0.002 * (2.0 + rng.standard_normal(send.size)))
        for t in np.arange(every_s, send[-1], every_s):
            d[int(np.searchsorted(send, t))] += size_s
        return d

    return delay


def _run(trace):
    pk = js.encode(speech(RATE, trace.duration_s + 1.0), trace.packets, "pcm", RATE, N)
    return js.replay(js.auto("normal"), trace, pk, keep_output=False)


def test_early_stretching_lets_the_buffer_run_with_less_delay(monkeypatch):
    trace = jt.custom_trace("spikes", _spikes_every(3.0, 0.15), 40.0, BLOCK_S, seed=1)
    early = _run(trace)
    monkeypatch.setattr(playout, "EARLY_PASSES", 0)  # never stretch on an overdue packet
    plain = _run(trace)
    assert early.counters["engine"]["early_stretch"] > 0
    assert plain.counters["engine"]["early_stretch"] == 0
    # The audio in hand, stretched from the moment a packet is overdue, covers part of
    # each spike, so the delay manager (told the measured gain) holds a lower target...
    assert early.mean_added_ms <= plain.mean_added_ms - 8.0, (
        early.mean_added_ms,
        plain.mean_added_ms,
    )
    # ... and the concealment stays within the normal safety budget's reach.
    assert early.concealed_pct <= 1.0
