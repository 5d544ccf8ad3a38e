"""Lag finding and aligned correlation between a reference and a received recording."""

import numpy as np
import pytest

from rtai.dsp.align import aligned_correlation, correlation, find_lag, overlap

N = 4000


def noise(seed: int, n: int = N) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(n).astype(np.float32)


def delayed(ref: np.ndarray, lag: int) -> np.ndarray:
    """``received[n] = ref[n - lag]``: positive lag delays, negative lag advances."""
    if lag >= 0:
        return np.concatenate([np.zeros(lag, dtype=ref.dtype), ref])
    return ref[-lag:].copy()


@pytest.mark.parametrize("lag", [0, 1, 7, 480, 1234, -1, -9, -300])
def test_find_lag_recovers_a_known_lag_of_noise_exactly(lag):
    ref = noise(1)
    assert find_lag(ref, delayed(ref, lag)) == lag


@pytest.mark.parametrize("lag", [25, -25])
def test_find_lag_survives_added_noise_and_gain(lag):
    ref = noise(2)
    rec = 0.3 * delayed(ref, lag)
    rec = rec + 0.05 * noise(3, rec.size)
    assert find_lag(ref, rec) == lag


def test_find_lag_of_empty_recording_raises():
    with pytest.raises(ValueError, match="empty"):
        find_lag(np.array([]), noise(1))
    with pytest.raises(ValueError, match="empty"):
        find_lag(noise(1), np.array([]))


@pytest.mark.parametrize("lag", [0, 333, -57])
def test_aligned_correlation_of_a_delayed_copy_is_about_one(lag):
    ref = noise(4)
    rec = delayed(ref, lag) + 0.01 * noise(5, delayed(ref, lag).size)
    got_lag, corr = aligned_correlation(ref, rec)
    assert got_lag == lag
    assert corr > 0.99


def test_aligned_correlation_of_independent_noise_is_low():
    _, corr = aligned_correlation(noise(6), noise(7))
    assert abs(corr) < 0.15


@pytest.mark.parametrize("lag", [10, -10])
def test_overlap_returns_the_samples_that_line_up(lag):
    ref = np.arange(100.0)
    rec = delayed(ref, lag)
    a, b = overlap(ref, rec, lag)
    assert a.size == b.size > 0
    np.testing.assert_array_equal(a, b)


def test_correlation_of_silence_is_zero_not_nan():
    assert correlation(np.zeros(10), noise(1, 10)) == 0.0


def test_windowed_delays_pick_the_best_match_not_the_loudest_one():
    # The window's true copy sits at 3000 frames; a five times louder stretch that is
    # only half like it sits at 200: its raw cross-correlation is 2.5 times the true
    # copy's, its normalised one half of it.
    from rtai.dsp.align import windowed_delays

    rng = np.random.default_rng(3)
    rate, w = 8000, 2000  # a 0.25 s window at 8 kHz
    seg = rng.standard_normal(w)
    other = 0.5 * seg + np.sqrt(0.75) * rng.standard_normal(w)  # correlation ~0.5
    recorded = np.zeros(4 * w)
    recorded[200 : 200 + w] = 5.0 * other
    recorded[3000 : 3000 + w] = seg
    played = np.concatenate([seg, np.zeros(w)])
    rows = windowed_delays(played, 0, recorded, 0, rate, window_s=0.25, search_s=0.5)
    t_s, delay_ms, corr = rows[0]
    assert t_s == 0.0 and delay_ms == 3000 * 1000 / rate and corr > 0.99
