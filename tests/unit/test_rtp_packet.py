"""RTP packets and header extensions: round trips, byte layout, parser robustness."""

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rtai.rtp.extensions import (
    ABS_CAPTURE_TIME_ID,
    decode_abs_capture_time,
    encode_abs_capture_time,
    q32_to_seconds,
    seconds_to_q32,
)
from rtai.rtp.packet import (
    MAX_DATAGRAM_BYTES,
    ONE_BYTE_PROFILE,
    RTP_HEADER_BYTES,
    TWO_BYTE_PROFILE,
    RtpError,
    RtpPacket,
    looks_like_rtp,
    parse_rtp,
)

u32 = st.integers(0, 2**32 - 1)

one_byte_extensions = st.dictionaries(
    st.integers(1, 14), st.binary(min_size=1, max_size=16), max_size=14
)
# At least one element that only the two-byte form can carry (id >= 15, empty, or > 16 bytes).
_two_byte_only = st.one_of(
    st.tuples(st.integers(15, 255), st.binary(max_size=32)),
    st.tuples(st.integers(1, 255), st.just(b"")),
    st.tuples(st.integers(1, 255), st.binary(min_size=17, max_size=255)),
)
two_byte_extensions = st.builds(
    lambda forced, rest: {**rest, forced[0]: forced[1]},
    _two_byte_only,
    st.dictionaries(st.integers(1, 255), st.binary(max_size=40), max_size=4),
)

packets = st.builds(
    RtpPacket,
    payload_type=st.integers(0, 127),
    sequence_number=st.integers(0, 0xFFFF),
    timestamp=u32,
    ssrc=u32,
    payload=st.binary(max_size=300),
    marker=st.booleans(),
    csrcs=st.lists(u32, max_size=15).map(tuple),
    extensions=st.one_of(st.just({}), one_byte_extensions, two_byte_extensions),
)


def _extension_profile(wire: bytes) -> int | None:
    if not wire[0] & 0x10:
        return None
    pos = RTP_HEADER_BYTES + 4 * (wire[0] & 0x0F)
    return struct.unpack_from("!H", wire, pos)[0]


# -- round trips -------------------------------------------------------------------------


@given(packets)
def test_serialize_then_parse_returns_the_same_packet(pkt):
    assert parse_rtp(pkt.serialize()) == pkt


@given(packets, st.integers(1, 255), st.data())
def test_parse_strips_padding_and_keeps_every_field(pkt, pad, data):
    wire = bytearray(pkt.serialize())
    wire[0] |= 0x20
    filler = data.draw(st.binary(min_size=pad - 1, max_size=pad - 1))
    padded = bytes(wire) + filler + bytes([pad])
    assert parse_rtp(padded) == pkt


@given(one_byte_extensions.filter(bool))
def test_small_extensions_use_the_one_byte_form(ext):
    wire = RtpPacket(96, 1, 2, 3, b"x", extensions=ext).serialize()
    assert _extension_profile(wire) == ONE_BYTE_PROFILE
    assert parse_rtp(wire).extensions == ext


@given(two_byte_extensions)
def test_extensions_that_do_not_fit_one_byte_use_the_two_byte_form(ext):
    wire = RtpPacket(96, 1, 2, 3, b"x", extensions=ext).serialize()
    assert _extension_profile(wire) == TWO_BYTE_PROFILE
    assert parse_rtp(wire).extensions == ext


def test_extension_block_is_padded_to_whole_words():
    wire = RtpPacket(96, 1, 2, 3, b"", extensions={1: b"\xaa\xbb"}).serialize()
    # 0xBEDE, length 1 word, element (id 1, len 2) = 0x11 aa bb, then one zero pad byte.
    assert wire[RTP_HEADER_BYTES:] == bytes.fromhex("bede0001 11aabb00")


def test_empty_element_is_encoded_in_two_byte_form_byte_exact():
    wire = RtpPacket(96, 1, 2, 3, b"", extensions={1: b""}).serialize()
    assert wire[RTP_HEADER_BYTES:] == bytes.fromhex("10000001 01000000")


# -- byte layout -------------------------------------------------------------------------


def test_hand_built_header_is_byte_exact():
    pkt = RtpPacket(
        payload_type=96,
        sequence_number=0x1234,
        timestamp=0xDEADBEEF,
        ssrc=0x01020304,
        payload=b"\x01\x02",
        marker=True,
        csrcs=(0x0A0B0C0D,),
    )
    expected = bytes.fromhex("81e01234 deadbeef 01020304 0a0b0c0d 0102")
    assert pkt.serialize() == expected
    assert parse_rtp(expected) == pkt


def test_parse_of_hand_built_bytes_reads_every_field():
    wire = bytes.fromhex("80 08 ffff 00000010 cafebabe") + b"payload"
    pkt = parse_rtp(wire)
    assert (pkt.payload_type, pkt.marker) == (8, False)
    assert (pkt.sequence_number, pkt.timestamp, pkt.ssrc) == (0xFFFF, 16, 0xCAFEBABE)
    assert pkt.csrcs == () and pkt.extensions == {} and pkt.payload == b"payload"


@pytest.mark.parametrize("seq", [65535, 0])
def test_sequence_numbers_at_the_wrap_round_trip(seq):
    wire = RtpPacket(96, seq, 0, 1).serialize()
    assert wire[2:4] == seq.to_bytes(2, "big")
    assert parse_rtp(wire).sequence_number == seq


def test_unknown_extension_profile_is_skipped_and_payload_still_found():
    header = bytes.fromhex("90 60 0001 00000002 00000003")
    ext = bytes.fromhex("1234 0002 deadbeef 01020304")
    pkt = parse_rtp(header + ext + b"audio")
    assert pkt.extensions == {}
    assert pkt.payload == b"audio"


def test_one_byte_id_15_stops_extension_processing():
    header = bytes.fromhex("90 60 0001 00000002 00000003")
    # element id 1 (1 byte 0x77), then id 15 (reserved), then what would be id 2.
    ext = bytes.fromhex("bede 0002 1077f0 00 2099 0000")
    pkt = parse_rtp(header + ext)
    assert pkt.extensions == {1: b"\x77"}


def test_one_byte_padding_between_elements_is_skipped():
    header = bytes.fromhex("90 60 0001 00000002 00000003")
    ext = bytes.fromhex("bede 0002 00 00 1055 2066 00 00")
    assert parse_rtp(header + ext).extensions == {1: b"\x55", 2: b"\x66"}


# -- serialize rejects out-of-range fields -----------------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [
        {"payload_type": 128},
        {"payload_type": -1},
        {"sequence_number": 65536},
        {"sequence_number": -1},
        {"timestamp": 2**32},
        {"ssrc": 2**32},
        {"ssrc": -1},
        {"csrcs": tuple(range(16))},
        {"extensions": {256: b"x"}},
        {"extensions": {1: bytes(256)}},
    ],
)
def test_serialize_rejects_fields_that_do_not_fit_the_wire(kwargs):
    fields = {"payload_type": 96, "sequence_number": 1, "timestamp": 2, "ssrc": 3, **kwargs}
    with pytest.raises(RtpError):
        RtpPacket(**fields).serialize()


# -- parser robustness -------------------------------------------------------------------


@given(st.binary(max_size=400))
def test_parse_of_arbitrary_bytes_only_raises_rtp_error(data):
    try:
        parse_rtp(data)
    except RtpError:
        pass


@given(st.integers(0x80, 0xBF), st.integers(0, 255), st.binary(min_size=10, max_size=400))
def test_parse_of_arbitrary_version_2_bytes_only_raises_rtp_error(b0, b1, rest):
    try:
        pkt = parse_rtp(bytes((b0, b1)) + rest)
    except RtpError:
        return
    assert len(pkt.csrcs) == b0 & 0x0F
    assert len(pkt.payload) <= len(rest) + 2 - RTP_HEADER_BYTES


@pytest.mark.parametrize("n", range(RTP_HEADER_BYTES))
def test_datagram_shorter_than_header_is_rejected(n):
    wire = RtpPacket(96, 1, 2, 3, b"payload").serialize()
    with pytest.raises(RtpError, match="shorter"):
        parse_rtp(wire[:n])


def test_csrc_list_past_the_end_is_rejected():
    wire = RtpPacket(96, 1, 2, 3, csrcs=(7, 8, 9)).serialize()
    with pytest.raises(RtpError, match="CSRC"):
        parse_rtp(wire[: RTP_HEADER_BYTES + 8])


def test_missing_extension_header_is_rejected():
    wire = bytes.fromhex("90 60 0001 00000002 00000003") + b"\xbe\xde"
    with pytest.raises(RtpError, match="extension header"):
        parse_rtp(wire)


def test_extension_block_longer_than_datagram_is_rejected():
    wire = bytes.fromhex("90 60 0001 00000002 00000003 bede0003 10aa0000")
    with pytest.raises(RtpError, match="extension block"):
        parse_rtp(wire)


def test_one_byte_element_running_past_its_block_is_rejected():
    # id 1 claims 16 bytes but the block is one word long.
    wire = bytes.fromhex("90 60 0001 00000002 00000003 bede0001 1faabbcc")
    with pytest.raises(RtpError, match="one-byte"):
        parse_rtp(wire)


@pytest.mark.parametrize(
    "block",
    ["000000 05", "05 ff 0000"],  # element header cut off; element body past the block
)
def test_two_byte_element_running_past_its_block_is_rejected(block):
    wire = bytes.fromhex("90 60 0001 00000002 00000003 1000 0001" + block)
    with pytest.raises(RtpError, match="two-byte"):
        parse_rtp(wire)


@pytest.mark.parametrize("b0", [0x00, 0x40, 0xC0, 0x3F])
def test_version_other_than_2_is_rejected(b0):
    wire = bytes((b0,)) + RtpPacket(96, 1, 2, 3, b"abc").serialize()[1:]
    with pytest.raises(RtpError, match="version"):
        parse_rtp(wire)


def test_padding_count_of_zero_is_rejected():
    wire = bytearray(RtpPacket(96, 1, 2, 3, b"abc\x00").serialize())
    wire[0] |= 0x20
    with pytest.raises(RtpError, match="padding"):
        parse_rtp(bytes(wire))


def test_padding_longer_than_the_payload_is_rejected():
    wire = bytearray(RtpPacket(96, 1, 2, 3, b"ab\x04").serialize())
    wire[0] |= 0x20
    with pytest.raises(RtpError, match="padding"):
        parse_rtp(bytes(wire))


def test_padding_that_fills_the_whole_payload_leaves_it_empty():
    wire = bytearray(RtpPacket(96, 1, 2, 3, b"\x00\x00\x03").serialize())
    wire[0] |= 0x20
    assert parse_rtp(bytes(wire)).payload == b""


def test_oversized_datagram_is_rejected_and_the_limit_itself_is_accepted():
    header = RtpPacket(96, 1, 2, 3).serialize()
    at_limit = header + bytes(MAX_DATAGRAM_BYTES - len(header))
    assert len(parse_rtp(at_limit).payload) == MAX_DATAGRAM_BYTES - RTP_HEADER_BYTES
    with pytest.raises(RtpError, match="oversized"):
        parse_rtp(at_limit + b"\x00")


# -- looks_like_rtp ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("first", "expected"),
    [(0, False), (0x52, False), (127, False), (128, True), (160, True), (191, True), (192, False)],
)
def test_looks_like_rtp_accepts_only_first_bytes_128_to_191(first, expected):
    assert looks_like_rtp(bytes((first, 0, 0, 0))) is expected


def test_looks_like_rtp_is_false_for_an_empty_datagram_and_true_for_a_real_packet():
    assert looks_like_rtp(b"") is False
    assert looks_like_rtp(RtpPacket(96, 1, 2, 3).serialize()) is True
    assert looks_like_rtp(b"RTAI\x01\x01{}") is False


# -- abs-capture-time --------------------------------------------------------------------


@given(st.floats(0.0, 1e6, allow_nan=False))
def test_abs_capture_time_round_trip_is_within_a_microsecond(t_s):
    body = encode_abs_capture_time(t_s)
    assert len(body) == 8
    assert abs(decode_abs_capture_time(body) - t_s) < 1e-6


def test_abs_capture_time_is_q32_32_big_endian():
    assert encode_abs_capture_time(1.5) == bytes.fromhex("00000001 80000000")
    assert seconds_to_q32(2.25) == (2 << 32) | (1 << 30)
    assert q32_to_seconds((3 << 32) | (1 << 31)) == 3.5


def test_abs_capture_time_with_clock_offset_decodes_the_capture_time():
    body = encode_abs_capture_time(12.75) + struct.pack("!q", -12345)
    assert decode_abs_capture_time(body) == 12.75


@pytest.mark.parametrize("size", [0, 1, 7, 9, 15, 17, 24])
def test_abs_capture_time_of_wrong_size_raises_rtp_error(size):
    with pytest.raises(RtpError, match=f"{size} bytes"):
        decode_abs_capture_time(bytes(size))


@given(st.floats(0.0, 1e6, allow_nan=False))
def test_abs_capture_time_survives_an_rtp_packet_round_trip(t_s):
    pkt = RtpPacket(
        96, 1, 2, 3, b"pcm", extensions={ABS_CAPTURE_TIME_ID: encode_abs_capture_time(t_s)}
    )
    got = parse_rtp(pkt.serialize()).extensions[ABS_CAPTURE_TIME_ID]
    assert abs(decode_abs_capture_time(got) - t_s) < 1e-6
