"""Partitioned Rice coding and the vectorised bit reader/writer."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rtai.codecs import CodecError, rice


@given(st.lists(st.integers(-(2**40), 2**40), max_size=50))
def test_zigzag_round_trip_and_order(values):
    x = np.array(values, dtype=np.int64)
    u = rice.zigzag(x)
    np.testing.assert_array_equal(rice.unzigzag(u), x)
    np.testing.assert_array_equal(rice.zigzag(np.array([0, -1, 1, -2, 2])), [0, 1, 2, 3, 4])


def test_fields_are_written_most_significant_bit_first():
    w = rice.BitWriter()
    w.write(0b101, 3)
    w.write(0b1, 1)
    w.write_signed(-1, 4)
    assert w.to_bytes() == bytes([0b10111111])
    r = rice.BitReader(bytes([0b10111111]))
    assert (r.read(3), r.read(1), r.read_signed(4)) == (0b101, 1, -1)
    r.finish()


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.integers(-(2**24), 2**24), min_size=1, max_size=300),
    st.integers(0, 7),
)
def test_rice_round_trip_any_values(values, trailer):
    x = np.array(values, dtype=np.int64)
    w = rice.BitWriter()
    rice.encode(w, x)
    w.write(trailer, 3)
    r = rice.BitReader(w.to_bytes())
    np.testing.assert_array_equal(rice.decode(r, x.size), x)
    assert r.read(3) == trailer
    r.finish()


def test_outliers_and_noise_escape_instead_of_long_unary_runs():
    x = np.zeros(256, dtype=np.int64)
    x[3] = 2**22  # one huge value among zeros
    w = rice.BitWriter()
    rice.encode(w, x)
    assert w.bits < 256 * 2 + 64  # not 2**22 >> k unary bits
    r = rice.BitReader(w.to_bytes())
    np.testing.assert_array_equal(rice.decode(r, 256), x)


def test_small_residuals_cost_few_bits():
    x = np.random.default_rng(1).integers(-3, 4, 480)
    w = rice.BitWriter()
    rice.encode(w, x)
    assert w.bits / x.size < 3.2


@given(st.binary(max_size=80), st.integers(1, 200))
def test_decoding_garbage_raises_codec_error_only(data, n):
    r = rice.BitReader(data)
    try:
        rice.decode(r, n, max_width=30)
        r.finish()
    except CodecError:
        pass


def test_reader_refuses_reads_past_the_end():
    r = rice.BitReader(b"\xff")
    r.read(8)
    with pytest.raises(CodecError):
        r.read(1)
    with pytest.raises(CodecError):
        rice.BitReader(b"\x00\x00").read_unary(1)


def test_finish_refuses_trailing_data():
    r = rice.BitReader(b"\x80\x01")
    r.read(1)
    with pytest.raises(CodecError):
        r.finish()
