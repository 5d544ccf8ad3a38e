"""Receiver statistics (RFC 3550 A.1, A.3, A.8): loss, wrap, reordering, jitter, reports."""

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rtai.rtp.receiver_stats import ReceiverStats, SenderStats, clamp_cumulative_lost
from rtai.rtp.rtcp import ReceiverReport, ReportBlock, parse_compound

RATE_HZ = 48_000
BLOCK_TS = 960  # 20 ms at 48 kHz
BLOCK_S = 0.020


def feed(stats: ReceiverStats, seqs: list[int], first_seq: int | None = None) -> None:
    """Feed packets with perfectly regular timing derived from their sequence numbers."""
    origin = seqs[0] if first_seq is None else first_seq
    for seq in seqs:
        k = (seq - origin) % 65536
        stats.on_packet(seq, (1000 + k * BLOCK_TS) % 2**32, 10.0 + k * BLOCK_S)


def report(stats: ReceiverStats) -> ReportBlock:
    return stats.make_report_block(0x1234, None, None, now_s=100.0)


def test_in_order_no_loss() -> None:
    stats = ReceiverStats(RATE_HZ)
    feed(stats, list(range(100, 200)))
    assert stats.base_seq == 100
    assert stats.extended_highest_seq == 199
    assert stats.packets_received == 100
    assert stats.packets_expected == 100
    assert stats.cumulative_lost == 0
    assert stats.jitter_ts_units == pytest.approx(0.0, abs=1e-6)
    block = report(stats)
    assert (block.fraction_lost, block.cumulative_lost, block.highest_seq) == (0, 0, 199)


def test_loss_counted_across_sequence_wrap() -> None:
    stats = ReceiverStats(RATE_HZ)
    sent = [65530 + i for i in range(6)] + list(range(0, 10))  # 65530..65535, 0..9
    lost = {65533, 65535, 0, 4}
    feed(stats, [s for s in sent if s not in lost])
    assert stats.extended_highest_seq == 65536 + 9
    assert stats.packets_expected == 16
    assert stats.packets_received == 12
    assert stats.cumulative_lost == 4
    block = report(stats)
    assert block.highest_seq == 0x0001_0009
    assert block.cumulative_lost == 4
    assert block.fraction_lost == 4 * 256 // 16


def test_many_wraps() -> None:
    stats = ReceiverStats(RATE_HZ)
    seq = 65000
    for i in range(3 * 65536):
        stats.on_packet(seq, i * BLOCK_TS % 2**32, i * BLOCK_S)
        seq = (seq + 1) % 65536
    assert stats.extended_highest_seq == 65000 + 3 * 65536 - 1
    assert stats.cumulative_lost == 0
    assert report(stats).highest_seq == (65000 + 3 * 65536 - 1) & 0xFFFF_FFFF


def test_reordering_is_not_loss() -> None:
    stats = ReceiverStats(RATE_HZ)
    feed(stats, [1, 3, 2, 4, 6, 5], first_seq=1)
    assert stats.extended_highest_seq == 6
    assert stats.cumulative_lost == 0
    assert report(stats).fraction_lost == 0


def test_reordering_across_wrap() -> None:
    stats = ReceiverStats(RATE_HZ)
    feed(stats, [65534, 0, 65535, 1], first_seq=65534)
    assert stats.extended_highest_seq == 65536 + 1
    assert stats.packets_expected == 4
    assert stats.cumulative_lost == 0


def test_duplicates_make_cumulative_lost_go_down() -> None:
    stats = ReceiverStats(RATE_HZ)
    feed(stats, [1, 2, 4, 5])
    assert stats.cumulative_lost == 1
    feed(stats, [5, 5], first_seq=1)
    assert stats.cumulative_lost == -1
    block = report(stats)
    assert block.cumulative_lost == -1
    assert block.fraction_lost == 0  # negative interval loss reports as 0
    [rr] = parse_compound(ReceiverReport(1, [block]).to_bytes())
    assert rr.reports == [block]


def test_fraction_lost_covers_the_interval_since_the_last_report() -> None:
    stats = ReceiverStats(RATE_HZ)
    # Interval 1: 0..9 sent, 3 and 7 lost -> 2/10.
    feed(stats, [s for s in range(10) if s not in (3, 7)], first_seq=0)
    first = report(stats)
    assert first.fraction_lost == (2 << 8) // 10
    assert stats.last_fraction_lost == first.fraction_lost
    # Interval 2: 10..19 all arrive.
    feed(stats, list(range(10, 20)), first_seq=0)
    second = report(stats)
    assert second.fraction_lost == 0
    assert second.cumulative_lost == 2
    # Interval 3: 20..39, 5 lost -> 5/20 = 64/256.
    feed(stats, [s for s in range(20, 40) if s % 4 != 1], first_seq=0)
    third = report(stats)
    assert third.fraction_lost == 64
    assert third.cumulative_lost == 7
    # Interval 4: nothing arrives -> nothing expected, fraction 0.
    assert report(stats).fraction_lost == 0


def test_late_packet_fills_previous_interval_loss() -> None:
    stats = ReceiverStats(RATE_HZ)
    feed(stats, [0, 1, 3], first_seq=0)
    assert report(stats).fraction_lost == 1 * 256 // 4
    feed(stats, [2, 4], first_seq=0)  # the late 2 lowers this interval's loss below zero
    block = report(stats)
    assert block.fraction_lost == 0
    assert block.cumulative_lost == 0


def test_total_loss_in_interval_saturates_below_256() -> None:
    stats = ReceiverStats(RATE_HZ)
    feed(stats, [0], first_seq=0)
    report(stats)
    feed(stats, [1000], first_seq=0)  # 999 lost, 1 received
    assert report(stats).fraction_lost == (999 << 8) // 1000


def test_jitter_zero_for_constant_transit_across_timestamp_wrap() -> None:
    stats = ReceiverStats(RATE_HZ)
    ts0 = 2**32 - 5 * BLOCK_TS
    for i in range(20):
        stats.on_packet(i, (ts0 + i * BLOCK_TS) % 2**32, 3.0 + i * BLOCK_S)
    assert stats.jitter_ts_units == pytest.approx(0.0, abs=1e-6)


def test_jitter_converges_for_alternating_arrival_offsets() -> None:
    # Every other packet arrives 2 ms late: |D| is 2 ms = 96 units on every packet,
    # so J = J + (|D| - J)/16 converges to 96 units.
    offset_s = 0.002
    stats = ReceiverStats(RATE_HZ)
    for i in range(400):
        late = offset_s if i % 2 else 0.0
        stats.on_packet(i, i * BLOCK_TS, 50.0 + i * BLOCK_S + late)
    assert stats.jitter_ts_units == pytest.approx(96.0, rel=1e-6)
    assert stats.jitter_ms == pytest.approx(2.0, rel=1e-6)
    assert report(stats).jitter in (95, 96)


def test_jitter_first_steps_follow_rfc_recurrence() -> None:
    stats = ReceiverStats(8000)
    stats.on_packet(0, 0, 0.0)
    stats.on_packet(1, 160, 0.020 + 0.010)  # 10 ms late: D = 80 units
    assert stats.jitter_ts_units == pytest.approx(80 / 16)
    stats.on_packet(2, 320, 0.040)  # back on time: D = -80
    assert stats.jitter_ts_units == pytest.approx(80 / 16 + (80 - 80 / 16) / 16)


def test_jitter_with_random_delay_matches_reference() -> None:
    rng = random.Random(7)
    stats = ReceiverStats(RATE_HZ)
    expected_j = 0.0
    prev_transit = None
    for i in range(500):
        delay = rng.uniform(0, 0.01)
        arrival_s = i * BLOCK_S + delay
        ts = i * BLOCK_TS
        stats.on_packet(i, ts, arrival_s)
        transit = arrival_s * RATE_HZ - ts
        if prev_transit is not None:
            expected_j += (abs(transit - prev_transit) - expected_j) / 16
        prev_transit = transit
    assert stats.jitter_ts_units == pytest.approx(expected_j, rel=1e-9)


def test_large_jump_resyncs_after_two_consecutive_packets() -> None:
    stats = ReceiverStats(RATE_HZ)
    feed(stats, list(range(100, 110)), first_seq=100)  # 10 packets, no loss
    assert stats.on_packet(40000, 0, 20.0) is False
    assert stats.packets_discarded == 1
    assert stats.extended_highest_seq == 109  # unchanged by the unconfirmed jump
    assert stats.on_packet(40001, BLOCK_TS, 20.02) is True
    assert stats.resyncs == 1
    assert stats.packets_discarded == 0
    assert stats.packets_received == 12
    assert stats.cumulative_lost == 0  # the gap is a restart, not loss
    assert stats.extended_highest_seq == 40001
    stats.on_packet(40003, 3 * BLOCK_TS, 20.06)
    assert stats.cumulative_lost == 1
    assert stats.jitter_ts_units == pytest.approx(0.0, abs=1e-6)  # not measured across the jump


def test_backward_jump_resync_keeps_extended_seq_increasing() -> None:
    stats = ReceiverStats(RATE_HZ)
    feed(stats, list(range(30000, 30010)), first_seq=30000)
    stats.on_packet(5, 0, 30.0)
    stats.on_packet(6, BLOCK_TS, 30.02)
    assert stats.resyncs == 1
    assert stats.extended_highest_seq > 30009
    assert stats.extended_highest_seq % 65536 == 6
    assert stats.cumulative_lost == 0


def test_stray_packet_is_discarded_without_resync() -> None:
    stats = ReceiverStats(RATE_HZ)
    feed(stats, list(range(0, 10)), first_seq=0)
    assert stats.on_packet(20000, 0, 1.0) is False
    feed(stats, list(range(10, 20)), first_seq=0)
    assert stats.on_packet(20001, 0, 2.0) is False  # not consecutive with the stray
    assert stats.resyncs == 0
    assert stats.packets_discarded == 2
    assert stats.extended_highest_seq == 19
    assert stats.cumulative_lost == 0


def test_very_late_packet_beyond_misorder_is_not_counted() -> None:
    stats = ReceiverStats(RATE_HZ)
    feed(stats, list(range(0, 300)), first_seq=0)
    assert stats.on_packet(50, 0, 9.0) is False
    assert stats.packets_received == 300


def test_report_block_lsr_and_dlsr() -> None:
    stats = ReceiverStats(RATE_HZ)
    feed(stats, [7])
    block = stats.make_report_block(0xABCD, 0x1234_5678, last_sr_arrival_s=10.0, now_s=10.5)
    assert block.ssrc == 0xABCD
    assert block.lsr == 0x1234_5678
    assert block.dlsr == 32768
    none = stats.make_report_block(0xABCD, None, None, now_s=11.0)
    assert (none.lsr, none.dlsr) == (0, 0)
    zero = stats.make_report_block(0xABCD, 0, 10.0, now_s=11.0)
    assert (zero.lsr, zero.dlsr) == (0, 0)
    clock_step = stats.make_report_block(0xABCD, 5, 10.0, now_s=9.0)
    assert clock_step.dlsr == 0


def test_report_block_before_any_packet_raises() -> None:
    with pytest.raises(ValueError, match="no RTP packets"):
        ReceiverStats(RATE_HZ).make_report_block(1, None, None, 0.0)


def test_cumulative_lost_clamped_to_24_bits() -> None:
    assert clamp_cumulative_lost(2**30) == 2**23 - 1
    assert clamp_cumulative_lost(-(2**30)) == -(2**23)
    assert clamp_cumulative_lost(-5) == -5


def test_invalid_parameters() -> None:
    with pytest.raises(ValueError):
        ReceiverStats(0)
    with pytest.raises(ValueError):
        ReceiverStats(RATE_HZ, max_dropout=0)


@given(
    start=st.integers(0, 65535),
    n=st.integers(1, 100),  # keeps every late packet within max_misorder
    data=st.data(),
)
def test_loss_accounting_property(start: int, n: int, data: st.DataObject) -> None:
    # Send n packets from `start` (wrapping freely), drop some, swap neighbours, duplicate
    # a few; the first packet always arrives first so it is the base.
    offsets = list(range(n))
    kept = [0] + [k for k in offsets[1:] if data.draw(st.booleans(), label=f"keep {k}")]
    arrivals = kept[:1]
    rest = kept[1:]
    i = 0
    while i < len(rest):
        if i + 1 < len(rest) and data.draw(st.booleans(), label="swap"):
            arrivals += [rest[i + 1], rest[i]]
            i += 2
        else:
            arrivals.append(rest[i])
            i += 1
    dups = data.draw(st.lists(st.sampled_from(arrivals), max_size=5), label="dups")
    arrivals += dups

    stats = ReceiverStats(RATE_HZ)
    for k in arrivals:
        assert stats.on_packet((start + k) % 65536, k * BLOCK_TS, k * BLOCK_S)
    highest = max(kept)
    assert stats.extended_highest_seq == start + highest
    assert stats.packets_expected == highest + 1
    assert stats.packets_received == len(arrivals)
    assert stats.cumulative_lost == highest + 1 - len(kept) - len(dups)
    block = report(stats)
    assert block.highest_seq == start + highest
    assert block.cumulative_lost == stats.cumulative_lost
    expected_fraction = max(0, ((highest + 1 - len(arrivals)) << 8) // (highest + 1))
    assert block.fraction_lost == expected_fraction


def test_sender_stats_counts_and_builds_sr() -> None:
    s = SenderStats()
    for _ in range(3):
        s.on_packet_sent(160)
    assert (s.packet_count, s.octet_count) == (3, 480)
    s.octet_count = 2**32 - 10
    s.on_packet_sent(20)
    assert s.octet_count == 10
    sr = s.make_sender_report(0x55, ntp_timestamp=1 << 32, rtp_timestamp=2**32 + 5)
    assert (sr.ssrc, sr.packet_count, sr.octet_count, sr.rtp_timestamp) == (0x55, 4, 10, 5)
    assert parse_compound(sr.to_bytes()) == [sr]
