"""The echo canceller's reference alignment and the 10 ms reframer (dsp/echo.py)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rtai.dsp.echo import EchoReference, Reframer

RATE = 48000


def _drive(ref: EchoReference, signal: np.ndarray, n: int, dac_lead_blocks: int, jitter=None):
    """Play ``signal`` so that sample j leaves the speaker at time j / RATE, the way a
    duplex callback does: callback k captures block k (adc = k n / RATE) and hands over
    the block that starts playing dac_lead_blocks later."""
    rng = np.random.default_rng(0)
    blocks = []
    for k in range(len(signal) // n - dac_lead_blocks - 1):
        adc = k * n / RATE
        dac = (k + dac_lead_blocks) * n / RATE
        if jitter:
            dac += rng.uniform(-jitter, jitter)
            adc += rng.uniform(-jitter, jitter)
        start = (k + dac_lead_blocks) * n
        ref.played(signal[start : start + n, None], dac, adc)
        blocks.append((k, adc))
    return blocks


@pytest.mark.parametrize("lead_blocks", [1, 2, 5])
def test_reference_is_what_the_speaker_played_lead_ahead_of_the_capture_time(lead_blocks):
    n = 128
    signal = np.arange(40 * n, dtype=np.float32)
    ref = EchoReference(RATE, 1, lead_s=0.004)
    lead = min(ref.lead_frames, lead_blocks * n)  # capped at the callback's dac - adc
    for k, adc in _drive(ref, signal, n, lead_blocks):
        if k < lead_blocks + 1:  # nothing played yet for that time
            continue
        got = ref.reference(k * n, adc, n)[:, 0]
        want = signal[k * n + lead : k * n + lead + n]
        assert np.array_equal(got, want)
    assert ref.realigned == 0


def test_reported_time_jitter_does_not_move_the_reference():
    n = 480
    signal = np.arange(60 * n, dtype=np.float32)
    ref = EchoReference(RATE, 1, lead_s=0.004, tolerance_s=0.004)
    offsets = set()
    for k, adc in _drive(ref, signal, n, 2, jitter=0.0005):
        ref.reference(k * n, adc, n)
        offsets.add(ref.offset_frames)
    assert len(offsets) == 1
    assert abs(next(iter(offsets)) - (ref.lead_frames - 2 * n)) <= 0.0011 * RATE
    assert ref.realigned == 0


def test_a_jump_in_the_device_times_realigns_once():
    n = 480
    ref = EchoReference(RATE, 1, lead_s=0.0)
    x = np.ones((n, 1), dtype=np.float32)
    for k in range(10):
        ref.played(x, (k + 2) * n / RATE, k * n / RATE)
        ref.reference(k * n, k * n / RATE, n)
    first = ref.offset_frames
    for k in range(10, 20):  # the output now reports its blocks 20 ms later (an xrun)
        ref.played(x, (k + 2) * n / RATE + 0.02, k * n / RATE)
        ref.reference(k * n, k * n / RATE, n)
    assert ref.realigned == 1
    assert ref.offset_frames == first - round(0.02 * RATE)


def test_missing_or_overwritten_reference_is_zeros_and_counted():
    n = 100
    ref = EchoReference(RATE, 1, seconds=0.01)  # a 480-frame ring
    assert not ref.reference(0, 0.0, n).any()
    assert ref.missing_frames == n
    ones = np.ones((n, 1), dtype=np.float32)
    for k in range(20):
        ref.played(ones, k * n / RATE)
    ref.missing_frames = 0
    old = ref.reference(0, 0.0, n)  # 2000 frames ago, long overwritten
    assert not old.any() and ref.missing_frames == n
    future = ref.reference(0, 19 * n / RATE + 0.01, n)
    assert not future.any()


@settings(max_examples=60, deadline=None)
@given(
    block=st.integers(min_value=16, max_value=1000),
    frame=st.sampled_from([80, 160, 441, 480, 960]),
    blocks=st.integers(min_value=1, max_value=40),
)
def test_reframer_returns_the_same_stream_delayed_by_its_constant_delay(block, frame, blocks):
    r = Reframer(block, frame, 2)
    rng = np.random.default_rng(block)
    x = rng.standard_normal((block * blocks, 2)).astype(np.float32)
    out = []
    for k in range(blocks):
        b = x[k * block : (k + 1) * block]
        for near, far in r.push(b, -b):
            assert near.shape == (frame, 2)
            assert np.array_equal(far, -near)
            r.put(near)
        out.append(r.pull())
    y = np.concatenate(out)
    d = r.delay_frames
    assert d == (0 if block % frame == 0 else frame - np.gcd(block, frame))
    assert not y[:d].any()
    assert np.array_equal(y[d:], x[: max(0, len(x) - d)])
