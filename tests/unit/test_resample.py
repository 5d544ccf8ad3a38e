"""Drift resampler: exact length bookkeeping, seamless streaming, frequency and quality."""

import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from scipy.signal import hilbert

from rtai.dsp.resample import DriftResampler

RATE_HZ = 48000
AMP = 0.5

ratios = st.floats(min_value=0.99, max_value=1.01, allow_nan=False)
block_sizes = st.integers(min_value=0, max_value=1000)


def tone(frames: int, freq_hz: float = 1000.0, channels: int = 1) -> np.ndarray:
    n = np.arange(frames)[:, None]
    phase = 2 * np.pi * freq_hz * n / RATE_HZ + np.arange(channels)[None, :]
    return (AMP * np.sin(phase)).astype(np.float32)


def stream(rs: DriftResampler, x: np.ndarray, blocks, ratios) -> np.ndarray:
    """Feed all of ``x`` in the given block sizes at the given ratios; join the output."""
    out, pos = [], 0
    for size, ratio in zip(blocks, ratios, strict=True):
        out.append(rs.process(x[pos : pos + size], ratio))
        pos += size
    assert pos == len(x)
    return np.concatenate(out)


def snr_db(reference: np.ndarray, test: np.ndarray) -> float:
    err = np.asarray(test, np.float64) - reference
    return float(10 * np.log10(np.sum(reference**2) / max(np.sum(err**2), 1e-300)))


def frequency_hz(y: np.ndarray) -> float:
    """Frequency of a tone from the slope of its analytic phase (per nominal RATE_HZ)."""
    phase = np.unwrap(np.angle(hilbert(y.astype(np.float64))))
    trim = len(y) // 10  # the analytic signal is poor near the ends
    n = np.arange(len(y))[trim:-trim]
    slope = np.polyfit(n, phase[trim:-trim], 1)[0]
    return slope * RATE_HZ / (2 * np.pi)


@pytest.mark.parametrize("channels", [1, 2])
def test_ratio_one_is_the_input_delayed_bit_for_bit(channels):
    rng = np.random.default_rng(1)
    x = (0.3 * rng.standard_normal((5000, channels))).astype(np.float32)
    rs = DriftResampler(channels)
    sizes = [0, 1, 7, 480, 333, 2000, 2179]
    y = stream(rs, x, sizes, [1.0] * len(sizes))
    d = rs.delay_frames
    assert y.shape == x.shape
    np.testing.assert_array_equal(y[:d], 0.0)
    np.testing.assert_array_equal(y[d:], x[:-d])
    assert snr_db(x[:-d].astype(np.float64), y[d:]) > 60.0


@settings(max_examples=60, deadline=None)
@given(steps=st.lists(st.tuples(block_sizes, ratios), min_size=1, max_size=60))
def test_output_length_tracks_input_times_ratio_within_one_frame(steps):
    rs = DriftResampler(1)
    expected = Fraction(0)  # exact sum of len * ratio
    produced = 0
    for size, ratio in steps:
        predicted = rs.output_frames_for(size, ratio)
        y = rs.process(np.zeros(size, np.float32), ratio)
        assert len(y) == predicted
        produced += len(y)
        expected += size * Fraction(ratio)
        assert -Fraction(1, 10**6) < produced - expected < 1 + Fraction(1, 10**6)
    assert rs.output_frames == produced
    assert rs.input_frames == sum(size for size, _ in steps)


@settings(max_examples=40, deadline=None)
@given(
    ratio=ratios,
    cuts=st.lists(st.integers(min_value=0, max_value=3000), min_size=1, max_size=12),
    channels=st.sampled_from([1, 2]),
)
@example(ratio=0.9900000000000001, cuts=[1], channels=1)  # 3000 * ratio is 2970 + 5e-13
def test_streaming_in_any_block_sizes_equals_one_call(ratio, cuts, channels):
    rng = np.random.default_rng(7)
    x = (0.3 * rng.standard_normal((3000, channels))).astype(np.float32)
    whole = DriftResampler(channels).process(x, ratio)
    edges = sorted(set(cuts) | {0, len(x)})
    sizes = list(np.diff(edges))
    parts = stream(DriftResampler(channels), x, sizes, [ratio] * len(sizes))
    assert parts.shape == whole.shape
    np.testing.assert_allclose(parts, whole, rtol=0, atol=2e-6)


@pytest.mark.parametrize("ratio", [0.99, 0.999, 1.001, 1.01])
def test_tone_comes_out_at_its_frequency_divided_by_the_ratio(ratio):
    # Output frames are played at the nominal rate, so a stream stretched to `ratio`
    # times as many frames sounds at 1000 / ratio Hz.
    x = tone(RATE_HZ)[:, 0]
    y = stream(DriftResampler(1), x, [480] * 100, [ratio] * 100)
    measured = frequency_hz(y)
    assert measured == pytest.approx(1000.0 / ratio, rel=5e-4)


def test_1khz_tone_at_ratio_1_001_is_clean():
    ratio = 1.001
    rs = DriftResampler(1)
    y = stream(rs, tone(RATE_HZ)[:, 0], [480] * 100, [ratio] * 100)
    k = np.arange(len(y))
    ideal = AMP * np.sin(2 * np.pi * 1000.0 * (k / ratio - rs.delay_frames) / RATE_HZ)
    settled = slice(2 * rs.delay_frames, None)  # after the filter has filled with signal
    assert snr_db(ideal[settled], y[settled]) > 100.0


def test_ratio_changing_every_call_follows_the_time_map_without_clicks():
    rng = np.random.default_rng(3)
    x = tone(RATE_HZ)[:, 0]
    sizes = list(rng.integers(1, 900, size=400))
    sizes = [s for s in np.cumsum(sizes) if s < len(x)]
    sizes = list(np.diff([0, *sizes, len(x)]))
    call_ratios = list(rng.uniform(0.99, 1.01, size=len(sizes)))
    rs = DriftResampler(1)
    # Where each output frame should sit on the input clock: linear within each call.
    input_time, out_pos, in_pos, phase = [], 0.0, 0, 0.0
    out = []
    for size, ratio in zip(sizes, call_ratios, strict=True):
        y = rs.process(x[in_pos : in_pos + size], ratio)
        input_time.append(in_pos + (phase + np.arange(len(y))) / ratio)
        phase = phase + len(y) - size * ratio
        out.append(y)
        in_pos += size
        out_pos += len(y)
    y = np.concatenate(out).astype(np.float64)
    t = np.concatenate(input_time)
    ideal = AMP * np.sin(2 * np.pi * 1000.0 * (t - rs.delay_frames) / RATE_HZ)
    settled = slice(2 * rs.delay_frames, None)
    assert snr_db(ideal[settled], y[settled]) > 95.0
    # No click anywhere: the second difference stays within that of the fastest tone.
    omega = 2 * np.pi * 1000.0 / (RATE_HZ * 0.99)
    assert np.max(np.abs(np.diff(y[settled], 2))) <= AMP * omega**2 * 1.01


def test_plus_minus_1000_ppm_over_a_long_stream_keeps_exact_bookkeeping():
    # Four simulated minutes of 10 ms blocks, the clock offset swinging between +1000 and
    # -1000 ppm with jitter: the count never strays a frame from sum(len * ratio).
    rng = np.random.default_rng(5)
    block = np.zeros(480, np.float32)
    rs = DriftResampler(1)
    expected = Fraction(0)
    produced = 0
    worst = Fraction(0)
    blocks = 24000
    ppm = 1000.0 * np.sign(np.sin((np.arange(blocks) + 0.5) * 2 * np.pi / 3000.0))
    ppm += rng.normal(0, 20, size=blocks)
    for k in range(blocks):
        ratio = 1.0 + ppm[k] * 1e-6
        produced += len(rs.process(block, ratio))
        expected += 480 * Fraction(ratio)
        worst = max(worst, abs(produced - expected))
    assert worst < 1
    assert -1e-6 < rs.phase < 1


def test_constant_1000_ppm_over_ten_minutes_adds_exactly_the_expected_frames():
    rs = DriftResampler(1)
    block = np.zeros(4800, np.float32)
    calls = 6001  # 10 min of 100 ms blocks, + 1 so the exact total is not a whole number
    produced = sum(len(rs.process(block, 1.001)) for _ in range(calls))
    exact = 4800 * calls * Fraction(1.001)  # 28,833,604.8 (float 1.001 is a hair below)
    assert produced == math.ceil(exact) == 28833605


@settings(max_examples=100, deadline=None)
@given(
    warmup=block_sizes,
    ratio=ratios,
    wanted=st.integers(min_value=0, max_value=2000),
)
def test_input_frames_for_is_the_fewest_that_yield_the_wanted_output(warmup, ratio, wanted):
    rs = DriftResampler(1)
    rs.process(np.zeros(warmup, np.float32), ratio)  # leaves some phase behind
    need = rs.input_frames_for(wanted, ratio)
    assert rs.output_frames_for(need, ratio) >= wanted
    if need > 0:
        assert rs.output_frames_for(need - 1, ratio) < wanted
    assert len(rs.process(np.zeros(need, np.float32), ratio)) >= wanted


def test_mono_1d_in_gives_1d_out_and_stereo_channels_stay_separate():
    x = tone(2000, channels=2)
    rs_stereo, rs_left = DriftResampler(2), DriftResampler(1)
    y = rs_stereo.process(x, 1.003)
    left = rs_left.process(x[:, 0], 1.003)
    assert left.ndim == 1
    assert y.shape == (len(left), 2)
    assert y.dtype == np.float32
    np.testing.assert_allclose(y[:, 0], left, atol=1e-7)
    assert not np.allclose(y[:, 1], left, atol=1e-3)


def test_reset_forgets_history_and_phase():
    rs = DriftResampler(1)
    x = tone(1000)[:, 0]
    first = rs.process(x, 1.007)
    rs.process(x, 0.993)
    rs.reset()
    assert rs.phase == 0.0 and rs.output_frames == 0
    np.testing.assert_array_equal(rs.process(x, 1.007), first)


@pytest.mark.parametrize("ratio", [0.0, 0.4, 2.5, float("nan"), float("inf")])
def test_rejects_ratios_outside_the_supported_range(ratio):
    with pytest.raises(ValueError, match="ratio"):
        DriftResampler(1).process(np.zeros(10, np.float32), ratio)


def test_rejects_the_wrong_channel_count():
    with pytest.raises(ValueError, match="frames, 2"):
        DriftResampler(2).process(np.zeros((10, 1), np.float32), 1.0)
