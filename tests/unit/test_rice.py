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


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.integers(-(2**24), 2**24), min_size=1, max_size=300),
    st.sampled_from(["plan", "bounds"]),
    st.integers(0, 7),
)
def test_half_step_parameters_round_trip_any_values(values, kind, trailer):
    x = np.array(values, dtype=np.int64)
    w = rice.BitWriter()
    base = np.array([0, x.size // 3, x.size]) if x.size >= 3 else np.array([0, x.size])
    if kind == "plan":
        rice.write(w, rice.Plan(x, half=True))
    else:
        rice.BoundsPlan(x, base, half=True).write(w)
    w.write(trailer, 3)
    r = rice.BitReader(w.to_bytes())
    if kind == "plan":
        np.testing.assert_array_equal(rice.decode(r, x.size, half=True), x)
    else:
        np.testing.assert_array_equal(rice.decode_split(r, base, half=True), x)
    assert r.read(3) == trailer
    r.finish()


@pytest.mark.parametrize("scale", [3.0, 40.0, 700.0, 20000.0])
def test_half_steps_cost_what_the_plan_says_and_help_on_gaussian_noise(scale):
    # A half step (2k + 1) doubles the first bucket of Rice parameter k: it fits the
    # flat top of a Gaussian better than either k or k + 1 alone.
    x = np.rint(np.random.default_rng(7).normal(0, scale, 4096)).astype(np.int64)
    bits = {}
    for half in (False, True):
        plan = rice.Plan(x, max_order=0, half=half)
        w = rice.BitWriter()
        rice.write(w, plan)
        bits[half] = w.bits
        # Without half steps the plan counts a fixed PARAM_COST per parameter.
        assert w.bits == (plan.bits if half else plan.bits - rice.PARAM_COST + rice.PARAM_BITS)
    assert bits[True] < bits[False]


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(-(2**20), 2**20), min_size=1, max_size=300), st.integers(0, 3))
def test_half_step_plans_count_their_bits_exactly(values, scale):
    # Parameters (first one, then unary differences) and escape widths included.
    x = np.array(values, dtype=np.int64) >> (5 * scale)
    w = rice.BitWriter()
    plan = rice.Plan(x, half=True)
    rice.write(w, plan)
    assert w.bits == plan.bits
    base = np.array([0, x.size // 2, x.size]) if x.size >= 2 else np.array([0, x.size])
    w = rice.BitWriter()
    bounds_plan = rice.BoundsPlan(x, base, half=True)
    bounds_plan.write(w)
    assert w.bits == bounds_plan.bits


def test_half_step_first_bucket_layout():
    # One partition, parameter p = 2k + 1 with k = 2: values below 2**3 are a 0 quotient
    # ("1") and 3 low bits; from 2**3 on, quotient (u >> 2) - 1 in unary and 2 low bits.
    u = np.array([0, 7, 8, 13], dtype=np.uint64)  # zigzagged values
    x = rice.unzigzag(u)
    w = rice.BitWriter()
    rice._write_body(w, u, np.array([0, 4]), np.array([5]), half=True)
    expected = "000101" + "1" + "1" + "01" + "001" + "000" + "111" + "00" + "01"
    assert w.bits == len(expected)
    data = w.to_bytes()
    assert np.unpackbits(np.frombuffer(data, np.uint8))[: len(expected)].tolist() == [
        int(c) for c in expected
    ]
    r = rice.BitReader(data)
    np.testing.assert_array_equal(rice.decode_bounds(r, np.array([0, 4]), half=True), x)


@given(st.binary(max_size=80), st.integers(1, 200))
def test_decoding_garbage_with_half_steps_raises_codec_error_only(data, n):
    r = rice.BitReader(data)
    try:
        rice.decode(r, n, max_width=30, half=True)
        r.finish()
    except CodecError:
        pass


def test_half_step_parameters_out_of_range_are_refused():
    w = rice.BitWriter()
    w.write(0, rice.ORDER_BITS)
    w.write(62, rice.HALF_PARAM_BITS)  # between the largest (61) and the escape (63)
    w.write(0, 16)
    with pytest.raises(CodecError):
        rice.decode(rice.BitReader(w.to_bytes()), 4, half=True)
