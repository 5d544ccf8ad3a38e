"""Time-scale modification: pitch kept, whole periods cut, no seams, silence cut freely."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.signal import resample

from rtai.audio.signals import speech
from rtai.dsp import tsm

RATE_HZ = 48000


def harmonic(f0_hz: float, frames: int, rate_hz: int = RATE_HZ, start: int = 0) -> np.ndarray:
    """A voiced-like tone: fundamental plus two harmonics, peak below 0.6."""
    t = (np.arange(frames) + start) / rate_hz
    y = sum(a * np.sin(2 * np.pi * k * f0_hz * t + k) for k, a in ((1, 0.3), (2, 0.2), (3, 0.1)))
    return y.astype(np.float32)[:, None]


def sine(freq_hz: float, frames: int, rate_hz: int = RATE_HZ, amp: float = 0.5) -> np.ndarray:
    t = np.arange(frames) / rate_hz
    return (amp * np.sin(2 * np.pi * freq_hz * t)).astype(np.float32)[:, None]


def chunked(op, x: np.ndarray, chunk_frames: int, rate_hz: int = RATE_HZ, **kwargs):
    """Apply ``op`` to successive chunks of ``x``; return the joined output and the counts."""
    outs, counts = [], []
    for start in range(0, len(x) - chunk_frames + 1, chunk_frames):
        y, n = op(x[start : start + chunk_frames], rate_hz, **kwargs)
        outs.append(y)
        counts.append(n)
    return np.concatenate(outs), counts


def peak_frequency_hz(y: np.ndarray, rate_hz: int = RATE_HZ) -> float:
    """Strongest spectral peak, Hann window, 16x zero padding, parabolic interpolation."""
    y = np.asarray(y, np.float64).reshape(-1)
    spectrum = np.abs(np.fft.rfft(y * np.hanning(len(y)), n=16 * len(y)))
    k = int(np.argmax(spectrum[1:-1])) + 1
    a, b, c = np.log(spectrum[k - 1 : k + 2] + 1e-300)
    return (k + 0.5 * (a - c) / (a - 2 * b + c)) * rate_hz / (16 * len(y))


def max_jump(y: np.ndarray) -> float:
    return float(np.max(np.abs(np.diff(np.asarray(y, np.float64), axis=0))))


# --- periodic signals -------------------------------------------------------------------

SIGNALS = {
    "harmonic 150 Hz": (150.0, lambda n, rate: harmonic(150.0, n, rate)),
    "sine 440 Hz": (440.0, lambda n, rate: sine(440.0, n, rate)),
}


@pytest.mark.parametrize("rate_hz", [48000, 16000, 8000])
@pytest.mark.parametrize("op", [tsm.accelerate, tsm.stretch], ids=["accelerate", "stretch"])
@pytest.mark.parametrize("name", list(SIGNALS))
def test_time_scaling_keeps_the_pitch(name, op, rate_hz):
    f0_hz, make = SIGNALS[name]
    chunk = rate_hz * 30 // 1000
    x = make(chunk * 33, rate_hz)  # 0.99 s
    y, counts = chunked(op, x, chunk, rate_hz)
    assert all(n > 0 for n in counts), "a steady periodic chunk must always be scaled"
    sign = -1 if op is tsm.accelerate else 1
    assert len(y) == len(x) + sign * sum(counts)
    assert abs(len(y) - len(x)) > 0.15 * len(x)  # a resampler would move the pitch this much
    assert peak_frequency_hz(y, rate_hz) == pytest.approx(f0_hz, rel=0.01)


@pytest.mark.parametrize("op", [tsm.accelerate, tsm.stretch], ids=["accelerate", "stretch"])
@pytest.mark.parametrize("f0_hz", [150.0, 440.0, 97.0])
def test_frames_changed_are_a_whole_number_of_periods_in_the_pitch_range(op, f0_hz):
    lo, hi = tsm.lag_range_frames(RATE_HZ)
    period = RATE_HZ / f0_hz
    x = harmonic(f0_hz, RATE_HZ * 30 // 1000)
    _, n = op(x, RATE_HZ)
    assert lo <= n <= hi
    periods = round(n / period)
    assert periods >= 1
    assert abs(n - periods * period) <= 1.0  # within a frame of k periods


@pytest.mark.parametrize("op", [tsm.accelerate, tsm.stretch], ids=["accelerate", "stretch"])
@pytest.mark.parametrize("name", list(SIGNALS))
def test_no_discontinuity_in_the_output(name, op):
    _, make = SIGNALS[name]
    x = make(RATE_HZ // 2, RATE_HZ)
    y, counts = chunked(op, x, RATE_HZ * 20 // 1000)
    assert sum(counts) > 0
    assert max_jump(y) <= 1.05 * max_jump(x)


@pytest.mark.parametrize("op", [tsm.accelerate, tsm.stretch], ids=["accelerate", "stretch"])
@pytest.mark.parametrize("amount", [37, 200, 555, 700])
def test_quiet_tone_cut_by_an_arbitrary_amount_has_no_click(op, amount):
    # -50 dBFS is "near silent": any amount goes, even one that is not a whole period,
    # so the short cross-fade is all that stands between the two ends and a click.
    x = sine(440.0, 960, amp=10 ** (-50 / 20) * np.sqrt(2))
    y, n = (
        op(x, RATE_HZ, max_remove_frames=amount)
        if op is tsm.accelerate
        else op(x, RATE_HZ, max_add_frames=amount)
    )
    assert n == amount
    assert max_jump(y) <= 1.3 * max_jump(x)  # a hard cut here would jump 10x or more
    # It starts and ends where the input does, so it joins its neighbours without a seam.
    assert abs(y[0, 0] - x[0, 0]) <= max_jump(x)
    assert abs(y[-1, 0] - x[-1, 0]) <= max_jump(x)


# --- silence and unsuitable chunks -------------------------------------------------------


@pytest.mark.parametrize("amount", [1, 50, 333, 800])
def test_silence_can_be_shortened_by_any_amount(amount):
    x = np.zeros((960, 2), np.float32)
    y, removed = tsm.accelerate(x, RATE_HZ, max_remove_frames=amount)
    assert removed == amount
    assert y.shape == (960 - amount, 2)
    assert not y.any()


def test_quiet_noise_is_shortened_and_lengthened_by_default():
    rng = np.random.default_rng(0)
    x = (0.001 * rng.standard_normal((960, 1))).astype(np.float32)  # -60 dBFS
    _, hi = tsm.lag_range_frames(RATE_HZ)
    y, removed = tsm.accelerate(x, RATE_HZ)
    assert removed == hi and len(y) == 960 - hi
    y, added = tsm.stretch(x, RATE_HZ)
    assert added == hi and len(y) == 960 + hi
    np.testing.assert_array_equal(y[-(960 - 120) :], x[120:])  # the tail runs on unchanged


def test_quiet_request_that_cannot_be_met_changes_nothing():
    x = np.zeros((960, 1), np.float32)
    y, removed = tsm.accelerate(x, RATE_HZ, min_remove_frames=900, max_remove_frames=950)
    assert removed == 0 and y is x


@pytest.mark.parametrize("op", [tsm.accelerate, tsm.stretch], ids=["accelerate", "stretch"])
def test_chunk_too_short_for_two_periods_is_returned_unchanged(op):
    x = harmonic(150.0, tsm.min_chunk_frames(RATE_HZ) - 1)
    y, n = op(x, RATE_HZ)
    assert n == 0
    assert y is x
    np.testing.assert_array_equal(y, harmonic(150.0, len(x)))


@pytest.mark.parametrize("op", [tsm.accelerate, tsm.stretch], ids=["accelerate", "stretch"])
def test_loud_noise_is_not_cut(op):
    rng = np.random.default_rng(2)
    x = (0.1 * rng.standard_normal((1440, 1))).astype(np.float32)  # -20 dBFS, aperiodic
    assert tsm.suitability(x, RATE_HZ) < tsm.MIN_SIMILARITY
    y, n = op(x, RATE_HZ)
    assert n == 0 and y is x


def test_min_and_max_amount_bound_the_cut_on_loud_audio():
    x = harmonic(150.0, 1440)  # period 320 frames
    _, removed = tsm.accelerate(x, RATE_HZ, 400)
    assert removed == 640  # two periods, the shortest whole-period cut of at least 400
    _, added = tsm.stretch(x, RATE_HZ, max_add_frames=250)
    assert added == 0  # nothing like a period at or below 250 frames


def test_suitability_prefers_quiet_and_periodic_chunks():
    rng = np.random.default_rng(4)
    noise = (0.1 * rng.standard_normal((960, 1))).astype(np.float32)
    assert tsm.suitability(np.zeros((960, 1), np.float32), RATE_HZ) == 1.0
    assert tsm.suitability(0.001 * noise, RATE_HZ) == 1.0  # -80 dBFS
    assert tsm.suitability(harmonic(150.0, 960), RATE_HZ) > 0.99
    assert tsm.suitability(noise, RATE_HZ) < 0.5
    a = tsm.analyze(harmonic(150.0, 960), RATE_HZ)
    assert a.lag_frames == 320 and not a.quiet


def test_energy_dbfs_uses_rms_relative_to_full_scale():
    assert tsm.energy_dbfs(np.full((100, 2), 0.1, np.float32)) == pytest.approx(-20.0)
    assert tsm.energy_dbfs(sine(1000.0, 4800, amp=1.0)) == pytest.approx(-3.01, abs=0.01)
    assert tsm.energy_dbfs(np.zeros((10, 1), np.float32)) == tsm.SILENCE_FLOOR_DBFS
    assert tsm.energy_dbfs(np.zeros((0, 1), np.float32)) == tsm.SILENCE_FLOOR_DBFS


# --- channels ---------------------------------------------------------------------------


@pytest.mark.parametrize("op", [tsm.accelerate, tsm.stretch], ids=["accelerate", "stretch"])
def test_stereo_gets_one_cut_for_both_channels(op):
    left = harmonic(150.0, 1440)
    # Anti-phase right channel: a mono mix would be silence, the analysis must not be.
    anti = np.hstack([left, -left])
    y, n = op(anti, RATE_HZ)
    mono, n_mono = op(left, RATE_HZ)
    assert n == n_mono > 0
    np.testing.assert_allclose(y[:, 0], mono[:, 0], atol=1e-6)
    np.testing.assert_array_equal(y[:, 1], -y[:, 0])
    # Different content per channel: the tail after the cut is both channels unchanged.
    both = np.hstack([left, sine(225.0, 1440, amp=0.3)])  # period 320 too, 2/3 of it
    y, n = op(both, RATE_HZ)
    assert n > 0
    tail = 1440 - 2 * n if op is tsm.accelerate else 1440 - n
    np.testing.assert_array_equal(y[-tail:], both[-tail:])


def test_one_dimensional_mono_comes_back_one_dimensional():
    x = harmonic(150.0, 1440)[:, 0]
    y, n = tsm.accelerate(x, RATE_HZ)
    assert y.ndim == 1 and len(y) == 1440 - n and y.dtype == np.float32


amounts = st.none() | st.integers(min_value=0, max_value=1500)


@settings(max_examples=80, deadline=None)
@given(
    frames=st.integers(min_value=0, max_value=2000),
    channels=st.sampled_from([1, 2]),
    level_db=st.sampled_from([-90.0, -50.0, -30.0, -6.0]),
    kind=st.sampled_from(["noise", "harmonic"]),
    lo=amounts,
    hi=amounts,
    seed=st.integers(0, 2**16),
    rate_hz=st.sampled_from([8000, 16000, 44100, 48000]),
)
def test_any_chunk_gives_a_consistent_result(
    frames, channels, level_db, kind, lo, hi, seed, rate_hz
):
    rng = np.random.default_rng(seed)
    if kind == "noise":
        x = rng.standard_normal((frames, channels))
    else:
        x = np.repeat(harmonic(rng.uniform(70, 390), frames, rate_hz), channels, axis=1)
    x = (x * 10 ** (level_db / 20) / max(1e-9, float(np.max(np.abs(x), initial=0)))).astype(
        np.float32
    )
    for op, sign in ((tsm.accelerate, -1), (tsm.stretch, 1)):
        if op is tsm.accelerate:
            y, n = op(x, rate_hz, lo, max_remove_frames=hi)
        else:
            y, n = op(x, rate_hz, lo, max_add_frames=hi)
        if n == 0:
            assert y is x
            continue
        assert (lo or 1) <= n <= (hi if hi is not None else n)
        assert y.shape == (frames + sign * n, channels) and y.dtype == np.float32
        # Every output sample is a convex mix of input samples: nothing louder, no overflow.
        assert np.max(np.abs(y)) <= np.max(np.abs(x)) * (1 + 1e-6)


# --- speech -----------------------------------------------------------------------------


def pitch_hz(window: np.ndarray, rate_hz: int = RATE_HZ) -> tuple[float, float]:
    """Autocorrelation pitch (65-400 Hz) of a window and its normalized peak height."""
    w = np.asarray(window, np.float64) - np.mean(window)
    ac = np.fft.irfft(np.abs(np.fft.rfft(w, 2 * len(w))) ** 2)[: len(w)]
    if ac[0] <= 0:
        return 0.0, 0.0
    lo, hi = rate_hz // 400, rate_hz // 65
    lag = lo + int(np.argmax(ac[lo:hi]))
    a, b, c = ac[lag - 1 : lag + 2]
    frac = 0.5 * (a - c) / (a - 2 * b + c) if a - 2 * b + c != 0 else 0.0
    return rate_hz / (lag + frac), float(b / ac[0])


def pitch_agreement(reference: np.ndarray, output: np.ndarray, input_index: np.ndarray) -> float:
    """Fraction of voiced 40 ms output windows whose pitch is within 3 % of the input's.

    ``input_index[k]`` is where output frame ``k`` came from in ``reference``; the input
    window compared is the one centred there.
    """
    half = RATE_HZ // 50  # 20 ms, so windows are 40 ms
    agree = voiced = 0
    for centre in range(half, len(output) - half, RATE_HZ // 100):
        f_out, v_out = pitch_hz(output[centre - half : centre + half])
        src = int(input_index[centre])
        if src < half or src + half > len(reference):
            continue
        f_in, v_in = pitch_hz(reference[src - half : src + half])
        if v_in < 0.6 or v_out < 0.6:
            continue
        voiced += 1
        agree += abs(f_out / f_in - 1) < 0.03
    assert voiced > 20, "the speech should have plenty of voiced windows"
    return agree / voiced


def test_pitch_agreement_measure_rejects_a_resampled_copy():
    # The measure used below must fail a plain 10 % speed-up (which raises the pitch 10 %).
    x = speech(RATE_HZ, 2.0, 0)
    fast = resample(x, int(len(x) / 1.1))
    index = np.minimum(np.round(np.arange(len(fast)) * 1.1).astype(int), len(x) - 1)
    assert pitch_agreement(x, fast, index) < 0.2


def test_accelerating_speech_chunk_by_chunk_keeps_pitch_and_has_no_clicks():
    x = speech(RATE_HZ, 2.0, 0)
    chunk = RATE_HZ * 20 // 1000
    outs, index, removed, loud_removed = [], [], [], []
    for start in range(0, len(x) - chunk + 1, chunk):
        piece = x[start : start + chunk]
        y, n = tsm.accelerate(piece, RATE_HZ)
        outs.append(y)
        removed.append(n)
        if not tsm.analyze(piece, RATE_HZ).quiet:
            loud_removed.append(n)
        # Output frame d of this chunk: inside the cross-fade it blends input 0..2n; after
        # it, it is input frame d + n.
        d = np.arange(len(y))
        index.append(start + np.where(d < n, 2 * d, d + n))
    y = np.concatenate(outs)
    assert len(y) == len(x) - sum(removed)
    # Cuts in speech itself, not only in its pauses: ~30 of ~80 loud chunks, ~14 % of 2 s.
    assert sum(n > 0 for n in loud_removed) >= 20
    assert sum(loud_removed) > 0.08 * len(x)
    assert pitch_agreement(x, y, np.concatenate(index)) > 0.9
    assert max_jump(y) <= 1.2 * max_jump(x)


def test_rejects_bad_arguments():
    with pytest.raises(ValueError, match="sample rate"):
        tsm.accelerate(np.zeros(100, np.float32), 0)
    with pytest.raises(ValueError, match="frames, channels"):
        tsm.stretch(np.zeros((2, 3, 4), np.float32), RATE_HZ)
    with pytest.raises(ValueError, match="min_remove_frames must not be negative"):
        tsm.accelerate(np.zeros(100, np.float32), RATE_HZ, -1)
