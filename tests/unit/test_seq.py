"""Wrap-aware sequence number and timestamp arithmetic."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rtai.rtp.seq import SEQ_MOD, TS_MOD, SeqUnwrapper, seq_add, seq_diff, seq_newer, ts_diff

seqs = st.integers(0, SEQ_MOD - 1)


@pytest.mark.parametrize(
    ("a", "b", "diff"),
    [(0, 65535, 1), (65535, 0, -1), (5, 65530, 11), (65530, 5, -11), (100, 100, 0), (1, 0, 1)],
)
def test_seq_diff_is_signed_distance_across_the_wrap(a, b, diff):
    assert seq_diff(a, b) == diff


def test_seq_diff_half_way_is_negative():
    assert seq_diff(32768, 0) == -32768
    assert seq_diff(32767, 0) == 32767


@given(seqs, st.integers(-32768, 32767))
def test_seq_diff_recovers_the_offset_added(a, n):
    assert seq_diff(seq_add(a, n), a) == n


@given(seqs, st.integers(-32768, 32767))
def test_seq_newer_is_true_exactly_for_forward_offsets(a, n):
    assert seq_newer(seq_add(a, n), a) is (n > 0)


@given(seqs, seqs)
def test_seq_diff_is_antisymmetric_except_at_half_the_space(a, b):
    if seq_diff(a, b) != -32768:
        assert seq_diff(b, a) == -seq_diff(a, b)


def test_seq_newer_across_the_wrap():
    assert seq_newer(0, 65535)
    assert not seq_newer(65535, 0)
    assert not seq_newer(7, 7)


def test_seq_add_wraps_both_ways():
    assert seq_add(65535, 1) == 0
    assert seq_add(0, -1) == 65535
    assert seq_add(65000, 1000) == 464


@pytest.mark.parametrize(
    ("a", "b", "diff"),
    [(0, TS_MOD - 1, 1), (TS_MOD - 1, 0, -1), (480, TS_MOD - 480, 960), (10, 10, 0)],
)
def test_ts_diff_is_signed_distance_across_the_32_bit_wrap(a, b, diff):
    assert ts_diff(a, b) == diff


@given(st.integers(0, TS_MOD - 1), st.integers(-(2**31), 2**31 - 1))
def test_ts_diff_recovers_the_offset_added(a, n):
    assert ts_diff((a + n) % TS_MOD, a) == n


def test_unwrapper_maps_the_first_value_to_itself():
    assert SeqUnwrapper().unwrap(65535) == 65535
    assert SeqUnwrapper().unwrap(0) == 0


def test_unwrapper_counts_through_a_single_wrap():
    u = SeqUnwrapper()
    got = [u.unwrap(s) for s in (65534, 65535, 0, 1)]
    assert got == [65534, 65535, 65536, 65537]


@given(seqs, st.lists(st.integers(1, 30000), min_size=1, max_size=40))
def test_unwrapper_is_strictly_increasing_in_order_across_many_wraps(start, steps):
    u = SeqUnwrapper()
    true = start
    assert u.unwrap(start) == start
    for step in steps:
        true += step
        assert u.unwrap(true % SEQ_MOD) == true


def test_unwrapper_goes_through_several_wraps_one_step_at_a_time():
    u = SeqUnwrapper()
    start = 60000
    out = [u.unwrap((start + i) % SEQ_MOD) for i in range(3 * SEQ_MOD)]
    assert out == list(range(start, start + 3 * SEQ_MOD))


@given(
    seqs,
    st.integers(50, 400),
    st.lists(st.tuples(st.integers(0, 399), st.integers(1, 5)), max_size=60),
)
def test_unwrapper_recovers_reordered_packets_near_the_wrap(start, n, swaps):
    true = list(range(start, start + n))
    # Local reordering: swap packets a few places apart.
    for i, d in swaps:
        j = min(n - 1, i + d)
        if i < n:
            true[i], true[j] = true[j], true[i]
    u = SeqUnwrapper()
    # The first packet seen is the reference; make it the true first so ext == true.
    u.unwrap(start)
    got = [u.unwrap(t % SEQ_MOD) for t in true]
    assert got == true


def test_unwrapper_late_packet_does_not_move_the_reference_back():
    u = SeqUnwrapper()
    assert u.unwrap(65535) == 65535
    assert u.unwrap(1) == 65537
    assert u.unwrap(65534) == 65534  # late, before the wrap
    assert u.unwrap(2) == 65538  # still after the wrap


def test_unwrapper_reference_stays_at_the_newest_after_a_far_late_packet():
    u = SeqUnwrapper()
    assert u.unwrap(30000) == 30000
    assert u.unwrap(10000) == 10000  # 20000 late
    # Measured from the newest (30000) this is 20000 ahead; from the late packet it
    # would look 25536 behind and unwrap to a negative number.
    assert u.unwrap(50000) == 50000
    assert u.unwrap(5000) == 70536  # and on across the wrap
