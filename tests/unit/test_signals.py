"""Tests for rtai.audio.signals: generated test signals."""

from __future__ import annotations

import numpy as np
import pytest

from rtai.audio import signals
from rtai.audio.signals import ArraySource, Source, is_signal_spec, make_signal, speech

RATE_HZ = 48000


def rms_db(x: np.ndarray) -> float:
    return float(20 * np.log10(np.sqrt(np.mean(np.asarray(x, np.float64) ** 2)) + 1e-20))


def peak_hz(x: np.ndarray, rate_hz: int) -> float:
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.fft.rfftfreq(len(x), 1 / rate_hz)[np.argmax(spectrum)])


def lag_frames(a: np.ndarray, b: np.ndarray) -> int:
    """Lag of b relative to a, by cross-correlation (positive: b is later)."""
    corr = np.correlate(b, a, mode="full")
    return int(np.argmax(corr)) - (len(a) - 1)


# --- ArraySource -------------------------------------------------------------------


def test_array_source_pads_with_zeros_and_finishes_after_last_real_frame() -> None:
    data = np.arange(10, dtype=np.float32).reshape(5, 2) / 10
    src = ArraySource(data, RATE_HZ)
    assert isinstance(src, Source)
    assert (src.rate_hz, src.channels) == (RATE_HZ, 2)
    first = src.read(3)
    np.testing.assert_array_equal(first, data[:3])
    assert not src.finished
    second = src.read(4)
    assert second.shape == (4, 2) and second.dtype == np.float32
    np.testing.assert_array_equal(second[:2], data[3:])
    np.testing.assert_array_equal(second[2:], 0)
    assert src.finished
    np.testing.assert_array_equal(src.read(2), np.zeros((2, 2), np.float32))


def test_array_source_accepts_mono_vector() -> None:
    src = ArraySource(np.ones(4), RATE_HZ)
    assert src.channels == 1
    assert src.read(4).shape == (4, 1)


def test_array_source_exact_length_read_finishes() -> None:
    src = ArraySource(np.ones((4, 1)), RATE_HZ)
    src.read(4)
    assert src.finished


def test_empty_array_source_is_finished_at_once() -> None:
    assert ArraySource(np.zeros((0, 1)), RATE_HZ).finished


def test_array_source_close_finishes() -> None:
    src = ArraySource(np.ones((4, 1)), RATE_HZ)
    src.close()
    assert src.finished


# --- specs -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "spec", ["tone", "tone:440", "TONE:1000", "chirp", "noise", "speech", "speech:1", "silence"]
)
def test_signal_specs_are_recognised(spec: str) -> None:
    assert is_signal_spec(spec)


@pytest.mark.parametrize("spec", ["out.wav", "default", "hw:0", "", "pink"])
def test_other_strings_are_not_signal_specs(spec: str) -> None:
    assert not is_signal_spec(spec)


@pytest.mark.parametrize(
    "spec", ["pink", "tone:abc", "tone:30000", "tone:0", "noise:3", "speech:7"]
)
def test_bad_spec_is_a_one_line_value_error_listing_valid_specs(spec: str) -> None:
    with pytest.raises(ValueError) as info:
        make_signal(spec, RATE_HZ, 1, None)
    message = str(info.value)
    assert "\n" not in message
    for name in signals.SIGNAL_NAMES:
        assert name in message


@pytest.mark.parametrize("spec", ["tone", "chirp", "noise", "speech", "silence"])
def test_every_read_is_exactly_the_requested_shape(spec: str) -> None:
    src = make_signal(spec, RATE_HZ, 2, None)
    for frames in (0, 1, 480, 1023):
        block = src.read(frames)
        assert block.shape == (frames, 2)
        assert block.dtype == np.float32
        assert np.all(np.abs(block) <= 1.0)


@pytest.mark.parametrize("spec", ["tone", "chirp", "noise", "speech", "silence"])
def test_endless_signal_never_finishes(spec: str) -> None:
    src = make_signal(spec, RATE_HZ, 1, None)
    src.read(RATE_HZ * 20)
    assert not src.finished


@pytest.mark.parametrize("spec", ["tone", "noise", "speech"])
def test_duration_limits_content_and_then_finishes(spec: str) -> None:
    src = make_signal(spec, RATE_HZ, 1, 0.5)
    first = src.read(20000)
    assert not src.finished
    second = src.read(20000)
    assert src.finished
    assert np.any(second[:4000] != 0)
    np.testing.assert_array_equal(second[4000:], 0)  # 24000 real frames in all
    assert np.any(first != 0)


def test_zero_duration_is_finished_at_once() -> None:
    assert make_signal("tone", RATE_HZ, 1, 0.0).finished


def test_close_finishes_an_endless_signal() -> None:
    src = make_signal("noise", RATE_HZ, 1, None)
    src.close()
    assert src.finished


@pytest.mark.parametrize("spec", ["tone:997", "chirp", "noise", "speech:1"])
def test_output_does_not_depend_on_block_size(spec: str) -> None:
    whole = make_signal(spec, RATE_HZ, 2, None).read(30000)
    src = make_signal(spec, RATE_HZ, 2, None)
    pieces = np.concatenate([src.read(n) for n in (1, 479, 8192, 8192, 13136)])
    np.testing.assert_array_equal(whole, pieces)


# --- tone --------------------------------------------------------------------------


@pytest.mark.parametrize(("spec", "frequency_hz"), [("tone", 440.0), ("tone:1000", 1000.0)])
def test_tone_frequency_and_level(spec: str, frequency_hz: float) -> None:
    x = make_signal(spec, RATE_HZ, 1, None).read(RATE_HZ)[:, 0]
    assert abs(peak_hz(x, RATE_HZ) - frequency_hz) <= 1.0
    assert np.max(np.abs(x)) == pytest.approx(10 ** (-12 / 20), rel=1e-3)  # -12 dBFS peak


def test_tone_accepts_hz_suffix() -> None:
    x = make_signal("tone:250Hz", 16000, 1, None).read(16000)[:, 0]
    assert abs(peak_hz(x, 16000) - 250) <= 1.0


def test_tone_stays_accurate_after_hours() -> None:
    src = make_signal("tone:1000", RATE_HZ, 1, None)
    src._position_frames = RATE_HZ * 3600 * 10  # ten hours in
    x = src.read(480)[:, 0]
    n = np.arange(RATE_HZ * 3600 * 10, RATE_HZ * 3600 * 10 + 480)
    expected = 10 ** (-12 / 20) * np.sin(
        2 * np.pi * (n % 48) / 48
    )  # 1000 Hz = 1/48 cycle per frame
    np.testing.assert_allclose(x, expected, atol=1e-6)


def test_stereo_tone_second_channel_is_a_different_tone() -> None:
    x = make_signal("tone:1000", RATE_HZ, 2, None).read(RATE_HZ)
    assert abs(peak_hz(x[:, 0], RATE_HZ) - 1000) <= 1
    assert abs(peak_hz(x[:, 1], RATE_HZ) - 750) <= 1


# --- chirp -------------------------------------------------------------------------


def test_chirp_sweeps_up_and_repeats() -> None:
    src = make_signal("chirp", RATE_HZ, 1, None)
    x = src.read(RATE_HZ * 7)[:, 0]
    period = round(signals.CHIRP_PERIOD_S * RATE_HZ)
    np.testing.assert_array_equal(x[:period], x[period : 2 * period])
    window = 4096
    early = peak_hz(x[int(0.2 * RATE_HZ) :][:window], RATE_HZ)
    late = peak_hz(x[int(2.8 * RATE_HZ) :][:window], RATE_HZ)
    assert 90 < early < 400
    assert 5000 < late <= 8100
    assert np.max(np.abs(x)) <= 10 ** (-12 / 20) + 1e-6


def test_chirp_stays_below_nyquist_at_low_rates() -> None:
    rate_hz = 8000
    x = make_signal("chirp", rate_hz, 1, None).read(rate_hz * 3)[:, 0]
    top = peak_hz(x[-int(0.2 * rate_hz) : -int(0.05 * rate_hz)], rate_hz)
    assert top <= rate_hz / 2.2 + 50


# --- noise -------------------------------------------------------------------------


def test_noise_level_whiteness_and_determinism() -> None:
    a = make_signal("noise", RATE_HZ, 1, None).read(RATE_HZ * 2)[:, 0]
    b = make_signal("noise", RATE_HZ, 1, None).read(RATE_HZ * 2)[:, 0]
    np.testing.assert_array_equal(a, b)
    assert rms_db(a) == pytest.approx(-20.0, abs=0.2)
    spectrum = np.abs(np.fft.rfft(a)) ** 2
    low = spectrum[1 : len(spectrum) // 2].mean()
    high = spectrum[len(spectrum) // 2 :].mean()
    assert low / high == pytest.approx(1.0, rel=0.1)
    assert abs(np.corrcoef(a[:-1], a[1:])[0, 1]) < 0.02


@pytest.mark.parametrize("spec", ["noise", "chirp", "speech"])
def test_stereo_second_channel_is_a_delayed_quieter_copy(spec: str) -> None:
    x = make_signal(spec, RATE_HZ, 2, None).read(RATE_HZ * 2).astype(np.float64)
    delay = round(signals.CHANNEL_DELAY_S * RATE_HZ)
    assert lag_frames(x[:RATE_HZ, 0], x[:RATE_HZ, 1]) == delay
    np.testing.assert_allclose(
        x[delay:, 1], x[:-delay, 0] * 10 ** (signals.CHANNEL_GAIN_DB / 20), atol=1e-6
    )
    np.testing.assert_array_equal(x[:delay, 1], 0)


# --- speech ------------------------------------------------------------------------


def test_speech_helper_length_level_and_voices_differ() -> None:
    a = speech(16000, 3.0, voice_seed=0)
    b = speech(16000, 3.0, voice_seed=1)
    assert a.shape == (48000,) and a.dtype == np.float32
    assert b.shape == (48000,)
    assert np.max(np.abs(a)) <= 0.9 + 1e-6
    assert -30 < rms_db(a) < -15
    assert not np.allclose(a, b)
    np.testing.assert_array_equal(a, speech(16000, 3.0, voice_seed=0))


def test_speech_source_matches_helper_and_loops() -> None:
    clip = signals.speech_clip(RATE_HZ, 0)
    src = make_signal("speech", RATE_HZ, 1, None)
    x = src.read(len(clip) + 1000)[:, 0]
    np.testing.assert_array_equal(x[: len(clip)], clip)
    np.testing.assert_array_equal(x[len(clip) :], clip[:1000])
    np.testing.assert_array_equal(speech(RATE_HZ, 1.0, 0), clip[:RATE_HZ])


def test_speech_has_pauses_and_voiced_energy() -> None:
    x = speech(16000, 8.0, 0).astype(np.float64)
    frame_power = np.mean(x[: len(x) // 320 * 320].reshape(-1, 320) ** 2, axis=1)
    quiet = frame_power < frame_power.max() * 1e-3
    assert 0.05 < quiet.mean() < 0.7  # speech with pauses, not a constant tone
    spectrum = np.abs(np.fft.rfft(x)) ** 2
    freqs = np.fft.rfftfreq(len(x), 1 / 16000)
    band = spectrum[(freqs > 80) & (freqs < 4000)].sum()
    assert band / spectrum.sum() > 0.8  # energy where voices live


@pytest.fixture
def no_espeak(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(signals, "_espeak_path", lambda: None)


@pytest.mark.usefixtures("no_espeak")
def test_synthetic_voice_fallback_is_deterministic_and_voice_like() -> None:
    rate_hz = 16000
    a = speech(rate_hz, 6.0, 0)
    b = speech(rate_hz, 6.0, 1)
    signals._speech_clip.cache_clear()
    np.testing.assert_array_equal(a, speech(rate_hz, 6.0, 0))  # regenerated, same samples
    assert not np.allclose(a, b)
    assert -30 < rms_db(a) < -15
    # Pitch between 100 and 220 Hz: the autocorrelation of a loud stretch peaks there.
    x = a.astype(np.float64)
    power = np.convolve(x**2, np.ones(800), mode="same")
    centre = int(np.argmax(power))
    seg = x[centre - 400 : centre + 400]
    ac = np.correlate(seg, seg, mode="full")[len(seg) - 1 :]
    lo, hi = rate_hz // 220, rate_hz // 100
    period = lo + int(np.argmax(ac[lo : hi + 1]))
    assert 100 <= rate_hz / period <= 220
    # Syllable rhythm: the envelope's strongest modulation is near 4 Hz.
    env = np.abs(x).reshape(-1, 160).mean(axis=1)  # 100 Hz envelope rate
    env_spec = np.abs(np.fft.rfft(env - env.mean()))
    env_freqs = np.fft.rfftfreq(len(env), 1 / 100)
    mask = (env_freqs > 1) & (env_freqs < 10)
    assert 3.0 <= env_freqs[mask][np.argmax(env_spec[mask])] <= 5.0


def test_speech_falls_back_when_espeak_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(signals, "_espeak_path", lambda: "/nonexistent/espeak-ng")
    signals._speech_clip.cache_clear()
    x = speech(8000, 1.0, 0)
    assert x.shape == (8000,)
    assert np.any(x != 0)
