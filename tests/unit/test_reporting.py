"""RTCP session logic: two peers exchanging compound packets over a fake clock."""

import pytest

from rtai.rtp import rtcp
from rtai.rtp.reporting import RtcpSession

RATE_HZ = 48000
BLOCK_FRAMES = 480
A_SSRC = 0x1111_1111
B_SSRC = 0x2222_2222


def pair() -> tuple[RtcpSession, RtcpSession]:
    a = RtcpSession(A_SSRC, B_SSRC, RATE_HZ, "alice")
    b = RtcpSession(B_SSRC, A_SSRC, RATE_HZ, "bob")
    return a, b


def feed_rtp(session: RtcpSession, seqs, start_s: float = 0.0) -> None:
    """Deliver RTP packets to ``session``'s receiver statistics, one block apart."""
    block_s = BLOCK_FRAMES / RATE_HZ
    for s in seqs:
        session.receiver.on_packet(s & 0xFFFF, s * BLOCK_FRAMES, start_s + s * block_s)


def deliver(data: bytes, to: RtcpSession, now_s: float) -> bool:
    return to.receive(rtcp.parse_compound(data), now_s)


@pytest.mark.parametrize(("delay_s", "hold_s"), [(0.025, 0.0), (0.025, 0.4), (0.1234, 1.7)])
def test_rtt_is_twice_the_one_way_delay_with_the_receivers_hold_time_removed(delay_s, hold_s):
    a, b = pair()
    feed_rtp(b, range(100, 150))  # B hears A's media, so B reports on A
    t0 = 1000.0
    assert deliver(a.build(t0, 0), to=b, now_s=t0 + delay_s) is False
    # B sits on A's SR for hold_s before reporting; DLSR must take that out.
    t1 = t0 + delay_s + hold_s
    deliver(b.build(t1, 0), to=a, now_s=t1 + delay_s)
    assert a.reports_received == 1
    assert a.peer.rtt_ms == pytest.approx(2 * delay_s * 1000, abs=0.1)


def test_rtt_is_unknown_until_the_peer_has_heard_a_sender_report():
    a, b = pair()
    feed_rtp(b, range(10))
    deliver(b.build(50.0, 0), to=a, now_s=50.02)  # B never got an SR from A: LSR = 0
    assert a.reports_received == 1
    assert a.peer.rtt_ms is None


def test_receiver_does_not_report_on_a_source_it_has_not_heard():
    a, b = pair()
    deliver(b.build(50.0, 0), to=a, now_s=50.02)
    assert a.reports_received == 0


def test_fraction_lost_and_cumulative_loss_reach_the_sender():
    a, b = pair()
    lost = {105, 110, 111, 150, 160, 170, 180, 181, 182, 190}
    feed_rtp(b, [s for s in range(100, 200) if s not in lost])
    deliver(b.build(10.0, 0), to=a, now_s=10.01)
    assert a.peer.cumulative_lost == len(lost)
    # 10 of 100 expected, in 1/256 units: floor(10 * 256 / 100) = 25.
    assert a.peer.fraction_lost == pytest.approx(25 / 256)


def test_fraction_lost_covers_only_the_interval_since_the_last_report():
    a, b = pair()
    feed_rtp(b, [s for s in range(0, 100) if s % 10 != 5])  # 10 % lost
    deliver(b.build(10.0, 0), to=a, now_s=10.01)
    assert a.peer.fraction_lost > 0
    feed_rtp(b, range(100, 200))  # nothing lost since
    deliver(b.build(20.0, 0), to=a, now_s=20.01)
    assert a.peer.fraction_lost == 0.0
    assert a.peer.cumulative_lost == 10


def test_jitter_is_converted_from_timestamp_units_to_ms():
    a, b = pair()
    block_s = BLOCK_FRAMES / RATE_HZ
    for i in range(200):
        wobble_s = 0.004 if i % 2 else 0.0
        b.receiver.on_packet(i, i * BLOCK_FRAMES, i * block_s + wobble_s)
    deliver(b.build(10.0, 0), to=a, now_s=10.01)
    assert a.peer.jitter_ms == pytest.approx(int(b.receiver.jitter_ts_units) / 48, rel=1e-9)
    assert 3.0 < a.peer.jitter_ms < 4.5  # |D| is 4 ms every packet


def test_reports_about_other_sources_are_ignored():
    a, _ = pair()
    stranger = RtcpSession(0x3333_3333, 0x4444_4444, RATE_HZ, "eve")
    feed_rtp(stranger, range(10))
    deliver(stranger.build(5.0, 0), to=a, now_s=5.0)
    assert a.reports_received == 0


def test_build_is_a_compound_sr_then_sdes_with_our_cname():
    a, b = pair()
    a.sender.on_packet_sent(960)
    packets = rtcp.parse_compound(a.build(7.5, 12345))
    sr, sdes = packets
    assert isinstance(sr, rtcp.SenderReport) and isinstance(sdes, rtcp.Sdes)
    assert (sr.ssrc, sr.rtp_timestamp, sr.packet_count, sr.octet_count) == (A_SSRC, 12345, 1, 960)
    assert sr.ntp_timestamp == rtcp.ntp_from_seconds(7.5)
    assert sr.reports == []  # nothing heard yet
    assert [(c.ssrc, c.cname) for c in sdes.chunks] == [(A_SSRC, "alice")]


def test_bye_from_the_peer_is_detected():
    a, b = pair()
    assert deliver(a.bye("hanging up"), to=b, now_s=1.0) is True


def test_bye_from_another_source_is_not_the_peer_leaving():
    a, b = pair()
    stranger = RtcpSession(0x3333_3333, B_SSRC, RATE_HZ, "eve")
    assert deliver(stranger.bye("bye"), to=b, now_s=1.0) is False
    assert deliver(a.build(1.0, 0), to=b, now_s=1.0) is False
