"""JackTrip 1.x packets: header layout, sample formats, redundancy, exit packet, garbage."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rtai.jacktrip import protocol as jt

# The first 16 bytes of a packet captured from `jacktrip -c 127.0.0.1 -n 1` (JackTrip
# 1.7.0, Debian 12, jackd dummy at 48 kHz, period 128), then its silent audio.
CAPTURED_HEADER = bytes.fromhex("cd226fea266106000000800003100100")


def test_captured_header_fields():
    h = jt.parse_header(CAPTURED_HEADER)
    assert (h.seq, h.buffer_frames, h.rate_hz, h.bits) == (0, 128, 48000, 16)
    assert (h.channels_in, h.channels_out, h.sent_channels) == (1, 0, 1)
    assert h.timestamp_us == 1795669630067405  # gettimeofday, in microseconds
    assert h.pack() == CAPTURED_HEADER


def test_captured_datagram_parses_as_one_mono_packet():
    (p,) = jt.parse_datagram(CAPTURED_HEADER + bytes(256))
    assert p.channels == 1 and jt.decode_audio(p.audio, 128, 16).shape == (128, 1)


def test_audio_is_channel_after_channel():
    block = np.array([[0.5, -0.25], [0.25, -0.5]], dtype=np.float32)  # frames x channels
    raw = np.frombuffer(jt.encode_audio(block, 16), dtype="<i2")
    assert raw.tolist() == [16384, 8192, -8192, -16384]


@pytest.mark.parametrize("bits", jt.BITS)
def test_codes_round_trip_exactly(bits):
    rng = np.random.default_rng(bits)
    full = 2 ** (bits - 1) if bits != 32 else 2**23
    codes = rng.integers(-full, full, size=(64, 2))
    block = (codes / full).astype(np.float32)
    back = jt.decode_audio(jt.encode_audio(block, bits), 64, bits)
    assert np.array_equal(back, block)


def test_24_bit_layout_is_16_bit_then_remainder_byte():
    # JackTrip stores 24 bits as a little-endian int16 and then an unsigned byte.
    x = np.array([[(-2 * 256 + 7) / 8388608]], dtype=np.float32)
    assert jt.encode_audio(x, 24) == bytes([0xFE, 0xFF, 7])


def test_build_and_parse_with_redundancy_newest_first():
    block = np.zeros((32, 2), dtype=np.float32)
    a = jt.build_packet(block, 7, 1, 44100, 24, 2)
    b = jt.build_packet(block, 8, 2, 44100, 24, 2)
    pkts = jt.parse_datagram(b + a)
    assert [p.header.seq for p in pkts] == [8, 7]
    assert pkts[0].header.rate_hz == 44100 and pkts[0].channels == 2


def test_exit_packet():
    assert jt.is_exit_packet(b"\xff" * 63)
    assert not jt.is_exit_packet(b"\xff" * 62)
    with pytest.raises(jt.JackTripError):
        jt.parse_datagram(b"\xff" * 63)


@pytest.mark.parametrize(
    "data",
    [b"", b"\x00" * 15, CAPTURED_HEADER[:13] + b"\x09\x01\x00", CAPTURED_HEADER + b"\x00"],
)
def test_bad_datagrams_raise_jacktrip_error(data):
    with pytest.raises(jt.JackTripError):
        jt.parse_datagram(data)


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=600))
def test_garbage_raises_only_jacktrip_error(data):
    try:
        packets = jt.parse_datagram(data)
    except jt.JackTripError:
        return
    for p in packets:
        jt.decode_audio(p.audio, p.header.buffer_frames, p.header.bits)


@settings(max_examples=200, deadline=None)
@given(
    st.integers(0, 2**64 - 1),
    st.integers(0, 0xFFFF),
    st.integers(1, 512),
    st.sampled_from(sorted(jt.RATE_CODES.values())),
    st.sampled_from(jt.BITS),
    st.integers(0, 255),
    st.integers(0, 255),
)
def test_header_round_trip(ts, seq, frames, rate, bits, cin, cout):
    h = jt.Header(ts, seq, frames, rate, bits, cin, cout)
    assert jt.parse_header(h.pack()) == h


# -- the peer's re-cutting of other block sizes (pure part of jacktrip/session.py) ------


def test_recutter_joins_small_blocks_and_splits_large_ones():
    from rtai.jacktrip.session import Recutter

    x = np.arange(1000, dtype=np.float32)[:, None]
    r = Recutter(128, 1)
    out = []
    for pos in range(0, 960, 64):  # a peer with 64-frame packets
        out += r.push(pos, x[pos : pos + 64])
    assert [i for i, _ in out] == list(range(7))
    assert np.array_equal(np.concatenate([b for _, b in out]), x[:896])
    r = Recutter(64, 1)
    out = r.push(0, x[:256])  # a peer with 256-frame packets
    assert [i for i, _ in out] == [0, 1, 2, 3]


def test_recutter_gap_and_late_block():
    from rtai.jacktrip.session import Recutter

    r = Recutter(100, 1)
    ones = np.ones((60, 1), dtype=np.float32)
    assert r.push(0, ones) == []
    out = r.push(240, 2 * ones)  # 60..239 lost: block 0 ends partly filled, 1 is missing
    assert [i for i, _ in out] == [0, 2]
    assert out[0][1][:60, 0].tolist() == [1.0] * 60 and out[0][1][60:, 0].tolist() == [0.0] * 40
    assert out[1][1][:40, 0].tolist() == [0.0] * 40 and out[1][1][40:, 0].tolist() == [2.0] * 60
    assert r.push(0, ones) == []  # late: before the cursor
    assert r.push(300, 3 * ones) == []
    ((i, b),) = r.push(360, 4 * ones[:40])
    assert i == 3 and b[:60, 0].tolist() == [3.0] * 60 and b[60:, 0].tolist() == [4.0] * 40


def test_jacktrip_first_redundant_datagram_ends_in_an_empty_slot():
    """`jacktrip -c ... -n 2 -r 2` (1.7.0) sends its first datagram with the second slot
    all zeros (its redundancy history starts zero-filled): that is the newest packet
    alone, not a malformed datagram."""
    header = bytes.fromhex("b244b283336106000000800003100200")  # captured: seq 0, 2 ch
    first = header + bytes(128 * 2 * 2) + bytes(16 + 128 * 2 * 2)
    (p,) = jt.parse_datagram(first)
    assert p.header.seq == 0 and p.channels == 2
    # a slot that is not empty must still be a packet like the first
    with pytest.raises(jt.JackTripError):
        jt.parse_datagram(header + bytes(512) + b"\x01" + bytes(527))
