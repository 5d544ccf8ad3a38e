"""Network traces replayed through the real receive path on a simulated clock.

Each test encodes a signal with ``MediaSender``, hands every datagram to
``MediaReceiver.receive`` at the arrival time a trace gives it, and asks
``MediaReceiver.playout`` for a block at every tick of the receiver's clock: the replay
harness and traces of ``bench/jitter.py`` (``bench/_jitter_sim.py``,
``bench/_jitter_traces.py``). Deterministic (seeded traces, no wall clock), and fast.

Added delay of a packet = when its first sample is played - its send time - the
trace's fastest delivery (what the buffer adds on top of the network).
"""

from __future__ import annotations

import importlib
import sys
from functools import lru_cache
from pathlib import Path

import numpy as np
import pytest

from rtai import codecs
from rtai.audio.signals import speech
from rtai.jitter import JitterBuffer, Playout
from rtai.rtp.packet import parse_rtp

BENCH = Path(__file__).resolve().parents[2] / "bench"


def _bench(name: str):
    if str(BENCH) not in sys.path:
        sys.path.insert(0, str(BENCH))
    return importlib.import_module(name)


js = _bench("_jitter_sim")
jt = _bench("_jitter_traces")

RATE, N = 16000, 160  # 10 ms blocks
BLOCK_S = N / RATE


@lru_cache(maxsize=2)
def _speech(seconds: float) -> np.ndarray:
    return speech(RATE, seconds)


def _replay(trace, contender, signal=None, rate=RATE, n=N, keep_output=False):
    sig = _speech(trace.duration_s + 1.0) if signal is None else signal
    pk = js.encode(sig, trace.packets, "pcm", rate, n)
    return js.replay(contender, trace, pk, keep_output=keep_output), pk


def _window(run, trace, t0: float, t1: float) -> np.ndarray:
    """Added delays (ms) of the packets sent in [t0, t1) that were played."""
    sel = (trace.send_s >= t0) & (trace.send_s < t1)
    a = run.added_ms[sel]
    return a[~np.isnan(a)]


def _concealed_ticks(run, t0: float, t1: float) -> int:
    n, rate = run.block_frames, run.rate_hz
    j0, j1 = int(t0 * rate / n), int(t1 * rate / n)
    return int(np.sum(run.tick_kind[j0:j1] == js.K_CONCEAL))


def _target_at(run, t: float) -> float:
    return float(run.target_ms[int(t * run.rate_hz / run.block_frames)])


# --- adaptive mode ----------------------------------------------------------------------------


def test_auto_delay_stays_bounded_under_20ms_gaussian_jitter():
    trace = jt.make_trace("gauss20", 30.0, BLOCK_S, seed=3)
    run, _ = _replay(trace, js.auto("normal"))
    net = (trace.delay_s - trace.min_delay_s) * 1000.0
    p50, p99 = np.percentile(net, [50, 99])
    settled = _window(run, trace, 5.0, trace.duration_s)
    # Enough to cover most of the jitter, and not much more than its 99th percentile.
    assert p50 <= settled.mean() <= p99 + 30.0, (settled.mean(), p50, p99)
    assert np.percentile(settled, 95) <= p99 + 45.0
    assert run.target_ms.max() <= 200.0
    assert run.concealed_pct <= 2.0


def test_auto_recovers_after_a_single_200ms_spike():
    spike_s = 20.0
    trace = jt.custom_trace("spike", jt.single_spike(spike_s, 0.200), 60.0, BLOCK_S, seed=5)
    run, _ = _replay(trace, js.auto("normal"))
    before = _window(run, trace, spike_s - 10.0, spike_s - 0.5).mean()
    target_before = float(np.mean(run.target_ms[int(10 / BLOCK_S) : int(19.5 / BLOCK_S)]))
    # The spike may cost concealment once; after it has passed there is none.
    assert _concealed_ticks(run, spike_s + 1.0, spike_s + 25.0) == 0
    # Within 30 s the delay and the target are back near where they were.
    after = _window(run, trace, spike_s + 30.0, spike_s + 35.0).mean()
    assert after <= before + 10.0, (before, after)
    assert _target_at(run, spike_s + 30.0) <= target_before + 10.0


def test_auto_shrinks_after_heavy_jitter_calms_down():
    calm_s = 10.0
    trace = jt.custom_trace(
        "calm", jt.piecewise((calm_s, 0.020), (1e9, 0.001)), 45.0, BLOCK_S, seed=7
    )
    run, _ = _replay(trace, js.auto("normal"))
    heavy = _window(run, trace, 5.0, calm_s).mean()
    later = _window(run, trace, calm_s + 20.0, calm_s + 25.0).mean()
    assert heavy - later >= 40.0, (heavy, later)
    assert _concealed_ticks(run, calm_s + 1.0, trace.duration_s - 1.0) == 0


@pytest.mark.parametrize("ppm", [1000.0, -1000.0])
def test_auto_holds_a_drifting_sender_clock_for_an_hour(ppm):
    # Cheap: 8 kHz mono, 20 ms blocks, a 400 Hz tone (every block the same), 2 ms jitter.
    rate, n = 8000, 160
    tone = (0.3 * np.sin(2 * np.pi * 400 * np.arange(n) / rate)).astype(np.float32)
    trace = jt.custom_trace("drift", jt.gauss(0.002), 3600.0, n / rate, seed=11, sender_ppm=ppm)
    run, _ = _replay(trace, js.auto("normal"), signal=tone, rate=rate, n=n)
    jitter = run.counters["jitter"]
    assert jitter["overflow_dropped"] == 0
    assert jitter["late"] == 0
    assert jitter["rebuffers"] <= 1  # the end of the stream
    # No underruns once playing: concealment about zero over the hour.
    assert run.concealed_pct <= 0.05, run.counters
    first = _window(run, trace, 60.0, 600.0)
    last = _window(run, trace, 3000.0, 3590.0)
    assert np.nanmax(_window(run, trace, 60.0, 3590.0)) <= 80.0
    assert abs(np.median(last) - np.median(first)) <= 10.0, (np.median(first), np.median(last))


# --- fixed mode ---------------------------------------------------------------------------------


def _direct_jitter_buffer(trace, pk, depth_ms):
    """The fixed-mode expectation: the packets into a bare JitterBuffer, popped at each tick,
    decoded (or concealed) by a fresh decoder."""
    info = codecs.get_codec("pcm")
    jb = JitterBuffer(pk.block_frames, pk.rate_hz, depth_ms)
    dec = info.make_decoder(pk.rate_hz, 1, pk.block_frames)
    silence = np.zeros((pk.block_frames, 1), np.float32)
    events = js._events(trace)
    block_s = pk.block_frames / pk.rate_hz
    kinds, out = [], []
    e = 0
    for j in range(js._ticks_for(trace, block_s)):
        t = (j + js.TICK_PHASE) * block_s
        while e < len(events) and events[e][0] <= t:
            at, k = events[e]
            p = parse_rtp(pk.datagrams[k])
            jb.insert(p.sequence_number, p.payload, at, None, timestamp=p.timestamp)
            e += 1
        item = jb.pop(t)
        kinds.append((item.kind, item.timestamp))
        if item.kind is Playout.NORMAL:
            out.append(dec.decode(item.payload).copy())
        elif item.kind is Playout.CONCEAL:
            out.append(dec.conceal().copy())
        else:
            out.append(silence)
    return kinds, np.concatenate(out)[:, 0], jb.counters


@pytest.mark.parametrize(
    "profile,depth_ms", [("gauss20", 40.0), ("spikes", 20.0), ("drift+", 30.0)]
)
def test_fixed_mode_plays_exactly_what_the_jitter_buffer_says(profile, depth_ms):
    trace = jt.make_trace(profile, 20.0, BLOCK_S, seed=2)
    run, pk = _replay(trace, js.fixed(depth_ms), keep_output=True)
    kinds, expected, counters = _direct_jitter_buffer(trace, pk, depth_ms)
    kind_code = {Playout.IDLE: js.K_IDLE, Playout.NORMAL: js.K_NORMAL}
    kind_code[Playout.CONCEAL] = js.K_CONCEAL
    assert [kind_code[k] for k, _ in kinds] == run.tick_kind.tolist()
    np.testing.assert_array_equal(run.output, expected)  # no time-scaling, no resampling
    assert run.counters["jitter"] == {k: getattr(counters, k) for k in counters.__slots__}
    assert run.counters["engine"]["accelerate"] == run.counters["engine"]["stretch"] == 0


def test_fixed_mode_starts_at_the_target_and_then_plays_every_packet_in_order():
    trace = jt.make_trace("steady", 5.0, BLOCK_S, seed=1)
    run, _ = _replay(trace, js.fixed(40.0))
    ticks = (np.arange(run.tick_kind.size) + js.TICK_PHASE) * BLOCK_S
    first = int(np.argmax(ticks >= trace.arrival_s[0] + 0.040))
    assert np.all(run.tick_kind[:first] == js.K_IDLE)
    played = run.play_s[~np.isnan(run.play_s)]
    assert played.size == trace.packets
    np.testing.assert_allclose(np.diff(run.play_s), BLOCK_S, atol=1e-9)
    assert run.play_s[0] == pytest.approx(ticks[first])
    assert run.concealed_pct == 0.0
