"""RFC 2198 redundant audio payloads."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rtai.rtp.packet import RtpError
from rtai.rtp.red import decode_red, encode_red


def test_red_layout_is_byte_exact():
    payload = encode_red(111, b"PRIM", [(960, b"ab"), (480, b"cde")])
    # F=1|PT=111, offset 960 (14 bits) | length 2 (10 bits)
    assert payload[:4] == bytes([0x80 | 111]) + ((960 << 10) | 2).to_bytes(3, "big")
    assert payload[4:8] == bytes([0x80 | 111]) + ((480 << 10) | 3).to_bytes(3, "big")
    assert payload[8] == 111
    assert payload[9:] == b"abcdePRIM"


@given(
    st.integers(0, 127),
    st.binary(max_size=300),
    st.lists(st.tuples(st.integers(1, 16383), st.binary(max_size=1023)), max_size=3),
)
def test_red_round_trip(pt, primary, redundant):
    blocks = decode_red(encode_red(pt, primary, redundant))
    assert [(b.timestamp_offset, b.data) for b in blocks[:-1]] == redundant
    assert blocks[-1].data == primary and blocks[-1].payload_type == pt
    assert all(b.payload_type == pt for b in blocks)


def test_blocks_that_do_not_fit_the_header_are_left_out():
    blocks = decode_red(encode_red(96, b"p", [(20000, b"x"), (10, bytes(1024)), (10, b"ok")]))
    assert [b.data for b in blocks] == [b"ok", b"p"]


@pytest.mark.parametrize("bad", [b"", b"\x80", b"\x80\x00\x00", b"\x80\x00\x04\x05\x60"])
def test_truncated_red_payloads_raise_rtp_error(bad):
    with pytest.raises(RtpError):
        decode_red(bad)


@given(st.binary(max_size=200))
def test_arbitrary_bytes_only_raise_rtp_error(data):
    try:
        decode_red(data)
    except RtpError:
        pass
