"""RTCP packet formats: round trips, byte layout, parser robustness, NTP and RTT math."""

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rtai.rtp.rtcp import (
    NTP_UNIX_EPOCH_OFFSET_S,
    Bye,
    ReceiverReport,
    ReportBlock,
    RtcpError,
    Sdes,
    SdesChunk,
    SenderReport,
    build_compound,
    is_rtcp,
    ntp_from_seconds,
    ntp_middle32,
    parse_compound,
    rtt_from_report,
    seconds_from_ntp,
)

u32 = st.integers(0, 2**32 - 1)
text = st.text(max_size=63)  # at most 252 octets of UTF-8, so always fits an item

report_blocks = st.builds(
    ReportBlock,
    ssrc=u32,
    fraction_lost=st.integers(0, 255),
    cumulative_lost=st.integers(-(2**23), 2**23 - 1),
    highest_seq=u32,
    jitter=u32,
    lsr=u32,
    dlsr=u32,
)
sender_reports = st.builds(
    SenderReport,
    ssrc=u32,
    ntp_timestamp=st.integers(0, 2**64 - 1),
    rtp_timestamp=u32,
    packet_count=u32,
    octet_count=u32,
    reports=st.lists(report_blocks, max_size=31),
)
receiver_reports = st.builds(ReceiverReport, ssrc=u32, reports=st.lists(report_blocks, max_size=31))
sdes_packets = st.builds(
    Sdes, chunks=st.lists(st.builds(SdesChunk, ssrc=u32, cname=text), max_size=31)
)
bye_packets = st.builds(Bye, ssrcs=st.lists(u32, max_size=31), reason=st.one_of(st.none(), text))
any_packet = st.one_of(sender_reports, receiver_reports, sdes_packets, bye_packets)


def header(count: int, packet_type: int, length_words: int, padding: bool = False) -> bytes:
    return struct.pack("!BBH", 0x80 | (0x20 if padding else 0) | count, packet_type, length_words)


# --- round trips ---------------------------------------------------------------------


@given(report_blocks)
def test_report_block_round_trip(block: ReportBlock) -> None:
    assert ReportBlock.from_bytes(block.to_bytes()) == block


@given(sender_reports)
def test_sender_report_round_trip(sr: SenderReport) -> None:
    assert parse_compound(sr.to_bytes()) == [sr]


@given(receiver_reports)
def test_receiver_report_round_trip(rr: ReceiverReport) -> None:
    assert parse_compound(rr.to_bytes()) == [rr]


@given(sdes_packets)
def test_sdes_round_trip(sdes: Sdes) -> None:
    data = sdes.to_bytes()
    assert len(data) % 4 == 0
    assert parse_compound(data) == [sdes]


@given(bye_packets)
def test_bye_round_trip(bye: Bye) -> None:
    data = bye.to_bytes()
    assert len(data) % 4 == 0
    assert parse_compound(data) == [bye]


@given(st.lists(any_packet, min_size=1, max_size=6))
def test_compound_round_trip(packets: list) -> None:
    data = build_compound(packets)
    assert is_rtcp(data)
    assert parse_compound(data) == packets


def test_build_compound_rejects_empty() -> None:
    with pytest.raises(RtcpError):
        build_compound([])


# --- byte-exact layout ---------------------------------------------------------------


def test_sender_report_bytes_match_rfc3550_layout() -> None:
    block = ReportBlock(
        ssrc=0x0A0B0C0D,
        fraction_lost=0x40,
        cumulative_lost=-2,
        highest_seq=0x0001_0005,
        jitter=0x77,
        lsr=0x1234_5678,
        dlsr=0x0000_8000,
    )
    sr = SenderReport(
        ssrc=0xDEADBEEF,
        ntp_timestamp=0x8396_2A00_8000_0000,
        rtp_timestamp=0x0001_E240,
        packet_count=3,
        octet_count=480,
        reports=[block],
    )
    expected = bytes.fromhex(
        "81"  # V=2, P=0, RC=1
        "c8"  # PT=200
        "000c"  # length: 13 words - 1
        "deadbeef"  # SSRC of sender
        "83962a00"  # NTP timestamp, most significant word
        "80000000"  # NTP timestamp, least significant word
        "0001e240"  # RTP timestamp
        "00000003"  # sender's packet count
        "000001e0"  # sender's octet count
        "0a0b0c0d"  # SSRC_1
        "40fffffe"  # fraction lost 0x40, cumulative lost -2 as 24-bit two's complement
        "00010005"  # extended highest sequence number received
        "00000077"  # interarrival jitter
        "12345678"  # LSR
        "00008000"  # DLSR
    )
    assert sr.to_bytes() == expected
    assert parse_compound(expected) == [sr]


def test_sdes_and_bye_bytes() -> None:
    sdes = Sdes([SdesChunk(0x01020304, "ab")])
    # SSRC, CNAME item (type 1, length 2, "ab"), then nulls to the 32-bit boundary.
    assert sdes.to_bytes() == bytes.fromhex("81ca0003010203040102616200000000")
    bye = Bye([0x01020304], "x")
    assert bye.to_bytes() == bytes.fromhex("81cb00020102030401780000")


# --- parser robustness ---------------------------------------------------------------


@given(st.binary(max_size=200))
def test_arbitrary_bytes_raise_only_rtcp_error(data: bytes) -> None:
    try:
        parse_compound(data)
    except RtcpError:
        pass


@given(st.binary(max_size=120))
def test_bytes_behind_a_valid_header_raise_only_rtcp_error(tail: bytes) -> None:
    # Arbitrary bodies behind a plausible first octet reach the per-type parsers.
    for packet_type in (200, 201, 202, 203, 204):
        for first in (0x80, 0x81, 0x9F, 0xA1):
            length_words = max(0, (len(tail) + 4) // 4 - 1)
            data = bytes([first, packet_type]) + struct.pack("!H", length_words) + tail
            try:
                parse_compound(data)
            except RtcpError:
                pass


@given(
    st.lists(any_packet, min_size=1, max_size=3),
    st.integers(0, 10_000),
    st.integers(0, 255),
    st.integers(0, 3),
)
def test_corrupted_compound_raises_only_rtcp_error(
    packets: list, where: int, value: int, trim: int
) -> None:
    data = bytearray(build_compound(packets))
    data[where % len(data)] = value
    del data[len(data) - trim :]
    try:
        parse_compound(bytes(data))
    except RtcpError:
        pass


def test_length_field_longer_than_datagram() -> None:
    data = bytearray(ReceiverReport(1).to_bytes())
    data[3] += 1
    with pytest.raises(RtcpError, match="length"):
        parse_compound(bytes(data))


@pytest.mark.parametrize("cut", [1, 2, 3, 4, 5, 8])
def test_truncated_datagram(cut: int) -> None:
    data = SenderReport(1, reports=[ReportBlock(2)]).to_bytes()
    with pytest.raises(RtcpError):
        parse_compound(data[:-cut])


def test_stray_octets_after_last_packet() -> None:
    with pytest.raises(RtcpError, match="stray"):
        parse_compound(ReceiverReport(1).to_bytes() + b"\x00\x00")


def test_report_count_larger_than_length() -> None:
    # RC says one report block but the length leaves room for none.
    data = header(1, 201, 1) + struct.pack("!I", 1)
    with pytest.raises(RtcpError, match="report blocks"):
        parse_compound(data)


def test_sender_report_shorter_than_sender_info() -> None:
    with pytest.raises(RtcpError):
        parse_compound(header(0, 200, 2) + bytes(8))


def test_wrong_version() -> None:
    data = bytearray(ReceiverReport(1).to_bytes())
    data[0] = (data[0] & 0x3F) | 0x40  # version 1
    with pytest.raises(RtcpError, match="version"):
        parse_compound(bytes(data))


def test_packet_type_outside_rtcp_range() -> None:
    # An RTP header (PT 0) given to the RTCP parser.
    with pytest.raises(RtcpError, match="range"):
        parse_compound(bytes.fromhex("80000001") + bytes(8))


def test_empty_and_tiny_input() -> None:
    for data in (b"", b"\x80", b"\x80\xc9\x00"):
        with pytest.raises(RtcpError):
            parse_compound(data)


def test_padding_is_stripped() -> None:
    rr = ReceiverReport(7, [ReportBlock(9, fraction_lost=1)])
    body = rr.to_bytes()[4:] + bytes([0, 0, 0, 4])
    data = header(1, 201, len(body) // 4, padding=True) + body
    assert parse_compound(data) == [rr]


@pytest.mark.parametrize("pad", [0, 9, 255])
def test_bad_padding_count(pad: int) -> None:
    # Packet of 8 octets: header, then 4 octets whose last holds the padding count.
    data = header(0, 203, 1, padding=True) + bytes([0, 0, 0, pad])
    with pytest.raises(RtcpError, match="padding"):
        parse_compound(data)


def test_padding_that_eats_report_blocks() -> None:
    rr = ReceiverReport(7, [ReportBlock(9)]).to_bytes()
    data = bytearray(rr)
    data[0] |= 0x20
    data[-1] = 4  # the padding claims the last word of the report block
    with pytest.raises(RtcpError, match="report blocks"):
        parse_compound(bytes(data))


def test_unknown_packet_types_are_skipped() -> None:
    app = header(1, 204, 3) + struct.pack("!I", 5) + b"name" + b"data"
    xr = header(0, 207, 1) + struct.pack("!I", 5)
    rtpfb = header(1, 205, 2) + struct.pack("!II", 5, 6)
    rr = ReceiverReport(5)
    bye = Bye([5])
    data = rr.to_bytes() + app + xr + rtpfb + bye.to_bytes()
    assert parse_compound(data) == [rr, bye]


def test_sr_profile_extension_ignored() -> None:
    sr = SenderReport(1, 2, 3, 4, 5)
    body = sr.to_bytes()[4:] + b"EXT!"
    data = header(0, 200, len(body) // 4) + body
    assert parse_compound(data) == [sr]


def test_sdes_ignores_other_items_and_keeps_cname() -> None:
    items = bytes([2, 3]) + b"bob" + bytes([1, 4]) + b"me@h" + bytes([0])
    chunk = struct.pack("!I", 77) + items + bytes(-len(items) % 4)
    data = header(1, 202, len(chunk) // 4) + chunk
    assert parse_compound(data) == [Sdes([SdesChunk(77, "me@h")])]


def test_sdes_without_end_marker() -> None:
    chunk = struct.pack("!I", 77) + bytes([1, 2]) + b"ab"
    with pytest.raises(RtcpError, match="end marker"):
        parse_compound(header(1, 202, 2) + chunk)


def test_sdes_item_overruns_packet() -> None:
    chunk = struct.pack("!I", 77) + bytes([1, 40]) + b"ab"
    with pytest.raises(RtcpError, match="past the end"):
        parse_compound(header(1, 202, 2) + chunk)


def test_sdes_invalid_utf8_is_replaced_not_fatal() -> None:
    chunk = struct.pack("!I", 3) + bytes([1, 2, 0xFF, 0xFE, 0, 0, 0, 0])
    [sdes] = parse_compound(header(1, 202, 3) + chunk)
    assert sdes == Sdes([SdesChunk(3, "\ufffd\ufffd")])


def test_bye_reason_overruns_packet() -> None:
    data = header(1, 203, 2) + struct.pack("!I", 1) + bytes([9, 0x61, 0x62, 0x63])
    with pytest.raises(RtcpError, match="reason"):
        parse_compound(data)


def test_bye_count_larger_than_length() -> None:
    with pytest.raises(RtcpError, match="BYE"):
        parse_compound(header(2, 203, 1) + struct.pack("!I", 1))


# --- serialisation limits ------------------------------------------------------------


@pytest.mark.parametrize(
    "packet",
    [
        ReportBlock(1, fraction_lost=256),
        ReportBlock(1, cumulative_lost=2**23),
        ReportBlock(1, cumulative_lost=-(2**23) - 1),
        ReportBlock(2**32),
        ReportBlock(1, jitter=-1),
        SenderReport(1, ntp_timestamp=2**64),
        SenderReport(1, reports=[ReportBlock(1)] * 32),
        ReceiverReport(1, reports=[ReportBlock(1)] * 32),
        Sdes([SdesChunk(1, "x" * 256)]),
        Sdes([SdesChunk(i) for i in range(32)]),
        Bye(list(range(32))),
        Bye([1], "y" * 256),
        Bye([-1]),
        ReceiverReport(1.5),  # type: ignore[arg-type]
    ],
)
def test_fields_that_do_not_fit_raise(packet) -> None:
    with pytest.raises(RtcpError):
        packet.to_bytes()


def test_rtcp_error_is_value_error() -> None:
    assert issubclass(RtcpError, ValueError)


# --- demultiplexing ------------------------------------------------------------------


@pytest.mark.parametrize("packet_type", [200, 201, 202, 203, 204, 205, 206, 207])
def test_is_rtcp_true_for_rtcp_types(packet_type: int) -> None:
    assert is_rtcp(header(0, packet_type, 1) + bytes(4))


@pytest.mark.parametrize("second_octet", [0, 8, 96, 111, 127, 0x80 | 96, 0x80 | 111, 0xE0])
def test_is_rtcp_false_for_rtp(second_octet: int) -> None:
    assert not is_rtcp(bytes([0x80, second_octet]) + bytes(10))


def test_is_rtcp_false_for_short_or_wrong_version() -> None:
    assert not is_rtcp(b"")
    assert not is_rtcp(b"\x80\xc8")
    assert not is_rtcp(bytes([0x40, 200, 0, 1]) + bytes(4))


# --- NTP and RTT ---------------------------------------------------------------------


def test_ntp_from_seconds() -> None:
    assert ntp_from_seconds(0.0) == 0
    assert ntp_from_seconds(1.5) == (1 << 32) | (1 << 31)
    assert ntp_from_seconds(0.25) == 1 << 30
    unix = 1_700_000_000.0
    assert ntp_from_seconds(unix + NTP_UNIX_EPOCH_OFFSET_S) >> 32 == 3_908_988_800
    # Era wrap (2036): the seconds field is taken mod 2**32.
    assert ntp_from_seconds(2**32 + 3.0) == 3 << 32
    with pytest.raises(ValueError):
        ntp_from_seconds(float("nan"))


@given(st.floats(0, 2**31, allow_nan=False))
def test_ntp_seconds_round_trip(t: float) -> None:
    assert abs(seconds_from_ntp(ntp_from_seconds(t)) - t) <= 1e-6


def test_ntp_middle32() -> None:
    assert ntp_middle32(0x1122_3344_5566_7788) == 0x3344_5566
    assert ntp_middle32(ntp_from_seconds(1.5)) == 0x0001_8000


def test_rtt_basic() -> None:
    # RFC 3550 section 6.4.1 example: A=0xb710:8000, LSR=0xb705:2000, DLSR=0x0005:4000.
    assert rtt_from_report(0xB710_8000, 0xB705_2000, 0x0005_4000) == pytest.approx(6.125)


def test_rtt_none_without_sender_report() -> None:
    assert rtt_from_report(0x1234_5678, 0, 0) is None


def test_rtt_across_32bit_wrap() -> None:
    lsr = 0xFFFF_4000  # 0.75 s before the 16.16 wrap
    dlsr = 0x0000_8000  # 0.5 s held at the receiver
    arrival = 0x0000_4000  # 0.25 s after the wrap
    assert rtt_from_report(arrival, lsr, dlsr) == pytest.approx(0.5)


def test_rtt_negative_is_clamped_to_zero() -> None:
    assert rtt_from_report(0x0001_0000, 0x0001_0000, 0x0000_0100) == 0.0
    assert rtt_from_report(0x0000_0000, 0xFFFF_0000, 0x0002_0000) == 0.0


@given(
    st.floats(1.0, 1e6, allow_nan=False),
    st.floats(0, 10, allow_nan=False),
    st.floats(0, 5, allow_nan=False),
)
def test_rtt_recovers_path_delay(sr_sent_s: float, hold_s: float, path_s: float) -> None:
    # Peer receives our SR after path_s/2, holds it hold_s, and its RR takes path_s/2.
    lsr = ntp_middle32(ntp_from_seconds(sr_sent_s))
    dlsr = round(hold_s * 65536)
    arrival = ntp_middle32(ntp_from_seconds(sr_sent_s + path_s + hold_s))
    rtt = rtt_from_report(arrival, lsr, dlsr)
    if lsr == 0:
        assert rtt is None
    else:
        assert rtt == pytest.approx(path_s, abs=3 / 65536)
