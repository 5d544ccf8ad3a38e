"""The adaptive playout's early stretching and what the delay manager assumes of it."""

from types import SimpleNamespace

import numpy as np
import pytest

from rtai import codecs
from rtai.delay import OVERDUE_BLOCKS, DelayManager
from rtai.jitter import JitterBuffer
from rtai.playout import PlayoutEngine

RATE, N = 16000, 160
BLOCK_S = N / RATE


def _engine() -> tuple[PlayoutEngine, JitterBuffer, DelayManager]:
    info = codecs.get_codec("pcm")
    jb = JitterBuffer(N, RATE, 20.0)
    dm = DelayManager(info.clock_rate(RATE), BLOCK_S)
    loss = SimpleNamespace(fec_recovered=0, decode_errors=0)
    engine = PlayoutEngine(jb, info.make_decoder(RATE, 1, N), N, 1, RATE, loss, delay=dm)
    return engine, jb, dm


def test_a_chunk_with_the_next_block_keeps_both_blocks():
    # The decoder hands back the same array for every block: the first block must be
    # copied before the second is decoded, or the chunk would hold the second twice.
    engine, jb, _ = _engine()
    enc = codecs.get_codec("pcm").make_encoder(RATE, 1, N, codecs.EncoderSettings())
    t = np.arange(2 * N) / RATE
    audio = (0.3 * np.sin(2 * np.pi * 220 * t) * np.linspace(0.2, 1.0, 2 * N)).astype(np.float32)
    for k in range(2):
        block = audio[k * N : (k + 1) * N, np.newaxis]
        jb.insert(k, enc.encode(block), 0.0, timestamp=k * N)
    first, _ = engine._decode(1.0)
    chunk = engine._with_next(first, 1.0)
    np.testing.assert_allclose(chunk[:, 0], audio, atol=1e-4)


def _feed(dm: DelayManager, delays_s, first: int = 0) -> float:
    """Packets every block with these extra delays; returns the last arrival time."""
    at = 0.0
    for k, d in enumerate(delays_s):
        i = first + k
        at = i * BLOCK_S + 0.02 + d
        dm.on_arrival(i * N, at)
    return at


def test_the_next_packet_is_overdue_only_past_its_usual_lateness():
    dm = DelayManager(RATE, BLOCK_S)
    rng = np.random.default_rng(1)
    _feed(dm, np.abs(rng.normal(0, 0.001, 1000)))
    due = 1000 * BLOCK_S + 0.02  # the next packet's earliest possible arrival
    usual_s = (dm._short_ms + OVERDUE_BLOCKS * BLOCK_S * 1000.0) / 1000.0
    assert dm.overdue_ms(due) < 0.0
    assert dm.overdue_ms(due + usual_s - 0.001) < 0.0
    assert dm.overdue_ms(due + usual_s + 0.005) == pytest.approx(5.0, abs=0.1)


def _spiky(seconds: float, every_s: float, size_s: float) -> np.ndarray:
    """1 ms jitter plus a spike every ``every_s``; the packets behind it queue (FIFO)."""
    rng = np.random.default_rng(2)
    d = np.abs(rng.normal(0, 0.001, int(seconds / BLOCK_S)))
    d[int(every_s / BLOCK_S) :: int(every_s / BLOCK_S)] += size_s
    for k in range(1, d.size):
        d[k] = max(d[k], d[k - 1] - BLOCK_S)
    return d


def test_a_buffer_that_stretches_early_is_given_a_lower_target():
    delays = _spiky(30.0, 2.0, 0.15)
    plain, stretching = DelayManager(RATE, BLOCK_S), DelayManager(RATE, BLOCK_S)
    stretching.stretch_gain = 0.5  # as if the playout had measured it
    _feed(plain, delays)
    _feed(stretching, delays)
    assert plain.target_ms > 60.0  # the spikes are charged against the budget
    # The stretched audio in hand covers part of each spike: less delay is needed.
    assert stretching.target_ms < plain.target_ms - 10.0


def _pause_then_resume(resume_in_sequence: bool) -> tuple[PlayoutEngine, DelayManager]:
    """Quiet noise for 2 s with a 60 ms buffer, then nothing for 0.5 s. In sequence: the
    next packet was held up (a spike) and comes with the rest behind it; otherwise the
    sender paused (DTX) and its timestamps jumped over the pause."""
    info = codecs.get_codec("pcm")
    jb = JitterBuffer(N, RATE, 20.0)
    dm = DelayManager(info.clock_rate(RATE), BLOCK_S, min_ms=60.0)
    loss = SimpleNamespace(fec_recovered=0, decode_errors=0)
    engine = PlayoutEngine(jb, info.make_decoder(RATE, 1, N), N, 1, RATE, loss, delay=dm)
    enc = info.make_encoder(RATE, 1, N, codecs.EncoderSettings())
    noise = np.random.default_rng(3).normal(0, 0.002, (N, 1)).astype(np.float32)
    talk, pause = 200, 50  # blocks
    arrivals = []
    for seq in range(2 * talk):
        sent = seq if seq < talk or resume_in_sequence else seq + pause  # in blocks
        at = (max(sent, talk + pause) if seq >= talk else sent) * BLOCK_S + 0.02
        arrivals.append((at, seq, sent * N, enc.encode(noise)))
    i = 0
    for tick in range(int((2 * talk + pause) * 1.2)):
        now = tick * BLOCK_S
        while i < len(arrivals) and arrivals[i][0] <= now:
            at, seq, ts, payload = arrivals[i]
            dm.on_arrival(ts, at)
            jb.insert(seq, payload, at, timestamp=ts)
            i += 1
        engine.next_block(now)
    return engine, dm


def test_the_stretch_gain_is_measured_on_spikes_not_on_pauses_in_sending():
    spike_engine, spike_dm = _pause_then_resume(resume_in_sequence=True)
    pause_engine, pause_dm = _pause_then_resume(resume_in_sequence=False)
    # Both stretched the quiet audio in hand while the next packet was overdue...
    assert spike_engine.counters.early_stretch > 0
    assert pause_engine.counters.early_stretch > 0
    # ... but only the spike says what stretching buys against a late packet.
    assert spike_dm.stretch_gain > 0.0
    assert pause_dm.stretch_gain == 0.0
    assert pause_dm.sending_gaps == 1 and spike_dm.sending_gaps == 0
