"""Lifting wavelet packets: integer reversibility, float reconstruction, band order."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rtai.dsp import wavelet


@settings(max_examples=150, deadline=None)
@given(st.integers(1, 1000), st.integers(0, 6), st.integers(0, 2**32 - 1))
def test_integer_packet_is_exactly_reversible(n, depth, seed):
    x = np.random.default_rng(seed).integers(-(2**25), 2**25, n)
    bands = wavelet.packet_forward(x, depth, integer=True)
    assert [b.size for b in bands] == wavelet.band_sizes(n, depth)
    assert sum(b.size for b in bands) == n
    assert all(b.dtype == np.int64 for b in bands)
    np.testing.assert_array_equal(wavelet.packet_inverse(bands, n, depth, integer=True), x)


@pytest.mark.parametrize("n", [5, 64, 480, 960])
def test_float_packet_reconstructs_both_channels(n):
    x = np.random.default_rng(n).standard_normal((n, 2))
    bands = wavelet.packet_forward(x, 4, integer=False)
    np.testing.assert_allclose(wavelet.packet_inverse(bands, n, 4, integer=False), x, atol=1e-12)


@pytest.mark.parametrize("freq_hz", [1000.0, 7000.0, 13000.0, 19000.0])
def test_bands_run_from_low_to_high_frequency(freq_hz):
    n, depth, rate = 512, 3, 48000
    t = np.arange(n)
    bands = wavelet.packet_forward(np.sin(2 * np.pi * freq_hz * t / rate), depth, integer=False)
    energy = [float(np.sum(b**2)) for b in bands]
    assert int(np.argmax(energy)) == int(freq_hz // (rate / 2 / 2**depth))


def test_smooth_signals_leave_little_in_the_high_bands():
    x = np.rint(10000 * np.sin(np.arange(480) / 30)).astype(np.int64)
    low, high = wavelet.split_int(x)
    assert low.size == 240 and np.abs(high[2:-2]).max() < 4
    # At the block's end the symmetric extension assumes a flat signal: one slope's worth.
    assert np.abs(high).max() < 10000 / 30


@settings(max_examples=100, deadline=None)
@given(st.integers(2, 1000), st.sampled_from([2, 4, 8]), st.integers(0, 2**32 - 1))
def test_adaptive_predict_step_is_exactly_reversible(n, taps, seed):
    rng = np.random.default_rng(seed)
    x = rng.integers(-(2**25), 2**25, n)
    coefs = rng.integers(-(2**16), 2**16, taps)
    s, d = wavelet.split_int_pred(x, coefs, 12)
    assert s.size == (n + 1) // 2 and d.size == n // 2
    np.testing.assert_array_equal(wavelet.merge_int_pred(s, d, coefs, 12), x)


@settings(max_examples=60, deadline=None)
@given(st.integers(4, 1000), st.sampled_from([8, 12]), st.integers(1, 6), st.integers(0, 2**32))
def test_column_predict_steps_match_one_column_at_a_time(n, taps, columns, seed):
    # The encoder splits many residuals at once, each with its own fitted step.
    rng = np.random.default_rng(seed)
    x = rng.integers(-(1 << 20), 1 << 20, (n, columns))
    coefs = rng.integers(-3000, 3000, (taps, columns))
    s, d = wavelet.split_int_pred_cols(x, coefs, 12)
    for j in range(columns):
        sj, dj = wavelet.split_int_pred(x[:, j], coefs[:, j], 12)
        np.testing.assert_array_equal(s[:, j], sj)
        np.testing.assert_array_equal(d[:, j], dj)


def test_a_fitted_predict_step_beats_the_fixed_one_on_a_resonance():
    # A narrow resonance near a quarter of the rate: the fixed interpolator assumes a
    # smooth signal, a fitted one predicts the odd samples far better.
    t = np.arange(480)
    x = np.rint(20000 * np.sin(2 * np.pi * 0.21 * t)).astype(np.int64)
    e, o = x[0::2].astype(float), x[1::2].astype(float)
    a = e[wavelet.pred_taps(x.size, 8)]
    coefs = np.rint(np.linalg.lstsq(a, o, rcond=None)[0] * 4096).astype(np.int64)
    _, d_fit = wavelet.split_int_pred(x, coefs, 12)
    _, d_fixed = wavelet.split_int(x)
    assert np.abs(d_fit[4:-4]).mean() < 0.1 * np.abs(d_fixed[4:-4]).mean()


def _reference_split_int(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One integer lifting level sample by sample, as the module docstring defines it:
    positions past either end mirrored about the end sample (clamped into the block when
    it is too short to mirror), read from the even or the odd half."""
    n = x.size
    e, o = x[0::2], x[1::2]

    def mirror(p: int) -> int:
        p = abs(p)
        p = abs(2 * (n - 1) - p) if p > n - 1 else p
        return min(max(p, 0), n - 1)

    def even(p: int) -> int:  # the even-half sample standing for position p
        return int(e[min(mirror(p) // 2, e.size - 1)])

    d = [
        int(o[m])
        - ((9 * (even(2 * m) + even(2 * m + 2)) - (even(2 * m - 2) + even(2 * m + 4)) + 8) >> 4)
        for m in range(o.size)
    ]

    def odd(p: int) -> int:  # the high-band value standing for position p
        return d[min(max((mirror(p) - 1) // 2, 0), len(d) - 1)]

    s = [
        int(e[k]) + (((odd(2 * k - 1) + odd(2 * k + 1) + 2) >> 2) if d else 0)
        for k in range(e.size)
    ]
    return np.array(s, dtype=np.int64), np.array(d, dtype=np.int64)


@pytest.mark.parametrize("n", list(range(1, 40)) + [127, 128, 255, 480])
def test_integer_split_matches_the_sample_by_sample_definition(n):
    x = np.random.default_rng(n).integers(-(2**20), 2**20, (n, 2))
    s, d = wavelet.split_int(x)  # both columns at once, as the lossless encoder does
    for c in range(2):
        ref_s, ref_d = _reference_split_int(x[:, c])
        np.testing.assert_array_equal(s[:, c], ref_s)
        np.testing.assert_array_equal(d[:, c], ref_d)
    np.testing.assert_array_equal(wavelet.merge_int(s, d), x)


def _reference_bank_split(x: np.ndarray, bank: wavelet.Bank) -> tuple[np.ndarray, np.ndarray]:
    """One integer lifting level with a bank's steps, sample by sample, as the module
    docstring and :class:`wavelet.Bank` define it (indices clamped into each half)."""
    e, o = [int(v) for v in x[0::2]], [int(v) for v in x[1::2]]
    p, u, shift = bank.predict, bank.update, bank.shift

    def at(seq: list[int], i: int) -> int:
        return seq[min(max(i, 0), len(seq) - 1)]

    d = [
        o[m]
        - ((sum(w * at(e, m - len(p) // 2 + 1 + j) for j, w in enumerate(p)) + (1 << (shift - 1)))
           >> shift)
        for m in range(len(o))
    ]  # fmt: skip
    s = [
        e[k]
        + (((sum(w * at(d, k - len(u) // 2 + j) for j, w in enumerate(u)) + (1 << shift))
            >> (shift + 1)) if d else 0)
        for k in range(len(e))
    ]  # fmt: skip
    return np.array(s, dtype=np.int64), np.array(d, dtype=np.int64)


def test_lagrange_weights_are_the_deslauriers_dubuc_steps_and_sum_to_one():
    assert wavelet.lagrange_midpoint(4, 4) == (-1, 9, 9, -1)
    assert wavelet.lagrange_midpoint(2, 1) == (1, 1)  # the (9,7)-M update, halved
    for w in (wavelet.LONG.predict, wavelet.LONG.update):
        assert sum(w) == 1 << wavelet.LONG.shift and w == w[::-1] and w[0] != 0
    x = np.full(480, 12345, dtype=np.int64)  # a constant: nothing in the high band
    low, high = wavelet.split_int(x, wavelet.LONG)
    assert not high.any() and (low == 12345).all()


@pytest.mark.parametrize("n", list(range(1, 40)) + [127, 128, 255, 480])
def test_bank_split_matches_the_sample_by_sample_definition(n):
    x = np.random.default_rng(n).integers(-(2**20), 2**20, (n, 3))
    s, d = wavelet.split_int(x, wavelet.LONG)  # columns at once, as the encoder does
    for c in range(3):
        ref_s, ref_d = _reference_bank_split(x[:, c], wavelet.LONG)
        np.testing.assert_array_equal(s[:, c], ref_s)
        np.testing.assert_array_equal(d[:, c], ref_d)
        one_s, one_d = wavelet.split_int(x[:, c], wavelet.LONG)  # one column alone
        np.testing.assert_array_equal(one_s, ref_s)
        np.testing.assert_array_equal(one_d, ref_d)
    np.testing.assert_array_equal(wavelet.merge_int(s, d, wavelet.LONG), x)


@settings(max_examples=150, deadline=None)
@given(st.integers(1, 1000), st.integers(0, 6), st.integers(0, 2**32 - 1))
def test_bank_packet_is_exactly_reversible(n, depth, seed):
    x = np.random.default_rng(seed).integers(-(2**30), 2**30, n)
    bands = wavelet.packet_forward(x, depth, integer=True, bank=wavelet.LONG)
    assert [b.size for b in bands] == wavelet.band_sizes(n, depth)
    out = wavelet.packet_inverse(bands, n, depth, integer=True, bank=wavelet.LONG)
    np.testing.assert_array_equal(out, x)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(2, 300), min_size=1, max_size=6), st.integers(0, 2**32 - 1))
def test_ragged_split_matches_each_sequence_alone_and_merges_back(lengths, seed):
    rng = np.random.default_rng(seed)
    xs = [rng.integers(-(2**30), 2**30, n) for n in lengths]
    for bank in (wavelet.LONG, None):
        low, high = wavelet.split_int_ragged(np.concatenate(xs), tuple(lengths), bank)
        lows, highs = zip(*(wavelet.split_int(x, bank) for x in xs), strict=True)
        np.testing.assert_array_equal(low, np.concatenate(lows))
        np.testing.assert_array_equal(high, np.concatenate(highs))
        if bank is not None:
            merged = wavelet.merge_int_ragged(low, high, tuple(lengths), bank)
            np.testing.assert_array_equal(merged, np.concatenate(xs))


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.tuples(st.integers(1, 300), st.integers(0, 4)), min_size=1, max_size=6),
    st.integers(0, 2**32 - 1),
)
def test_packets_of_many_sequences_match_one_at_a_time(shapes, seed):
    # Sequences of equal and unequal lengths and depths, some repeated: split together,
    # each gets exactly the bands it gets alone; merged together, each comes back.
    rng = np.random.default_rng(seed)
    shapes = shapes + shapes[:1]
    xs = [rng.integers(-(2**30), 2**30, n) for n, _ in shapes]
    depths = [depth for _, depth in shapes]
    assert wavelet.packet_forward_many([], [], wavelet.LONG) == []
    for bank in (wavelet.LONG, None):
        many = wavelet.packet_forward_many(xs, depths, bank)
        assert len(many) == len(xs)
        for x, depth, bands in zip(xs, depths, many, strict=True):
            alone = wavelet.packet_forward(x, depth, integer=True, bank=bank)
            assert len(bands) == len(alone)
            for got, want in zip(bands, alone, strict=True):
                np.testing.assert_array_equal(got, want)
        for x, depth, bands in zip(xs, depths, many, strict=True):
            starts = wavelet.band_starts(x.size, depth)
            assert starts.tolist() == [0, *np.cumsum([b.size for b in bands]).tolist()]
        joined = [np.concatenate(bands) for bands in many]
        back = wavelet.packet_inverse_many(joined, [x.size for x in xs], depths, bank)
        for x, got in zip(xs, back, strict=True):
            np.testing.assert_array_equal(got, x)


@settings(max_examples=100, deadline=None)
@given(st.integers(2, 1000), st.sampled_from([2, 8, 12]), st.integers(0, 2**32 - 1))
def test_fitted_predict_step_with_the_bank_update_is_exactly_reversible(n, taps, seed):
    rng = np.random.default_rng(seed)
    x = rng.integers(-(2**25), 2**25, (n, 2))
    coefs = rng.integers(-(2**12), 2**12, (taps, 2))
    s, d = wavelet.split_int_pred_cols(x, coefs, 7, wavelet.LONG)
    for j in range(2):
        sj, dj = wavelet.split_int_pred(x[:, j], coefs[:, j], 7, wavelet.LONG)
        np.testing.assert_array_equal(s[:, j], sj)
        np.testing.assert_array_equal(d[:, j], dj)
        np.testing.assert_array_equal(
            wavelet.merge_int_pred(sj, dj, coefs[:, j], 7, wavelet.LONG), x[:, j]
        )


@pytest.mark.parametrize("freq", [0.05, 0.2, 0.3, 0.45])
def test_the_long_bank_keeps_each_band_out_of_the_other(freq):
    # A tone in one half of the spectrum: the long steps leave far less of it in the
    # other band than the (9,7)-M ones (away from the block's ends).
    t = np.arange(960)
    x = np.rint(20000 * np.sin(2 * np.pi * freq * t)).astype(np.int64)
    inside = slice(40, -40)

    def leak(bank):
        low, high = wavelet.split_int(x, bank)
        wrong = high if freq < 0.25 else low - low.mean()
        return float(np.mean(wrong[inside].astype(float) ** 2))

    if abs(freq - 0.25) > 0.1:
        assert leak(wavelet.LONG) < 0.05 * leak(None) + 1.0
    else:  # near the crossover both leak; the long steps still less
        assert leak(wavelet.LONG) < leak(None)
