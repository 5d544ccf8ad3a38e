"""The JackTrip 1.x UDP audio packet (pure): header, sample formats, exit packet.

Facts from JackTrip's source (v1.7.0, the version Debian 12 ships; read for
facts only) and checked against packets captured from the real program:

* Every datagram is a 16-byte header in the host's byte order (little-endian on
  every platform JackTrip runs on) followed by the audio::

      u64 timestamp   microseconds since 1970 (gettimeofday) when the packet was made
      u16 sequence    +1 per packet, wraps
      u16 buffer      frames per channel in the packet (the JACK period)
      u8  rate code   0 22050, 1 32000, 2 44100, 3 48000, 4 88200, 5 96000, 6 192000
      u8  bits        8, 16, 24 or 32 (the sample format below)
      u8  ch in       channels the sender plays (what it wants from the network)
      u8  ch out      channels it sends: 0 = same as ch in, 255 = none

* The audio is channel after channel (non-interleaved): ``buffer`` samples of
  channel 1, then of channel 2... Sample formats (JackTrip's AudioInterface): 8 and
  16 bits are signed integers read as ``v / 2**(bits-1)``; 24 bits are a signed
  16-bit integer then an unsigned byte of the remainder, read as
  ``(hi + lo / 256) / 32768``; 32 bits are IEEE float. JackTrip writes 8 and 16
  bits as ``round(x * 127)`` and ``round(x * 32767)``; rtai writes the exact inverse
  of the reading rule (``x * 2**(bits-1)``), so rtai's samples arrive bit-exact.
* Redundancy (``jacktrip -r N``): each datagram carries the N newest packets,
  newest first, each with its own header.
* The exit packet is 63 bytes of 0xFF, sent twice when a peer stops.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np

HEADER = struct.Struct("<QHHBBBB")
HEADER_BYTES = HEADER.size  # 16
EXIT_PACKET = b"\xff" * 63
DEFAULT_PORT = 4464
RATE_CODES = {22050: 0, 32000: 1, 44100: 2, 48000: 3, 88200: 4, 96000: 5, 192000: 6}
RATES_BY_CODE = {v: k for k, v in RATE_CODES.items()}
BITS = (8, 16, 24, 32)
NO_CHANNELS = 255
MAX_BUFFER_FRAMES = 8192


class JackTripError(ValueError):
    """A datagram that is not a JackTrip audio packet rtai can use."""


@dataclass(frozen=True, slots=True)
class Header:
    timestamp_us: int
    seq: int
    buffer_frames: int
    rate_code: int
    bits: int
    channels_in: int
    channels_out: int

    def pack(self) -> bytes:
        try:
            return HEADER.pack(
                self.timestamp_us,
                self.seq,
                self.buffer_frames,
                self.rate_code,
                self.bits,
                self.channels_in,
                self.channels_out,
            )
        except struct.error as e:
            raise JackTripError(f"header field out of range: {e}") from None

    @property
    def rate_hz(self) -> int | None:
        return RATES_BY_CODE.get(self.rate_code)

    @property
    def sent_channels(self) -> int:
        """How many channels of audio follow, as the header declares them."""
        if self.channels_out == NO_CHANNELS:
            return 0
        return self.channels_out or self.channels_in


def sample_bytes(bits: int) -> int:
    if bits not in BITS:
        raise JackTripError(f"bit resolution {bits}: JackTrip uses 8, 16, 24 or 32")
    return bits // 8


def is_exit_packet(data: bytes) -> bool:
    return data == EXIT_PACKET


def parse_header(data: bytes) -> Header:
    if len(data) < HEADER_BYTES:
        raise JackTripError(f"datagram of {len(data)} bytes is shorter than a JackTrip header")
    h = Header(*HEADER.unpack_from(data, 0))
    if h.bits not in BITS:
        raise JackTripError(f"bit resolution {h.bits}: not a JackTrip packet")
    if h.rate_code not in RATES_BY_CODE:
        raise JackTripError(f"sample-rate code {h.rate_code}: not a JackTrip packet")
    if not 0 < h.buffer_frames <= MAX_BUFFER_FRAMES:
        raise JackTripError(f"buffer of {h.buffer_frames} frames: not a JackTrip packet")
    return h


@dataclass(frozen=True, slots=True)
class Packet:
    header: Header
    audio: bytes  # the audio part, channel after channel

    @property
    def channels(self) -> int:
        return len(self.audio) // (self.header.buffer_frames * (self.header.bits // 8))


def parse_datagram(data: bytes) -> list[Packet]:
    """The packets in one datagram, newest first (more than one with redundancy)."""
    h = parse_header(data)
    size = HEADER_BYTES + h.buffer_frames * sample_bytes(h.bits) * h.sent_channels
    if h.sent_channels == 0 or len(data) % size:
        # JackTrip 1.7 says 0 ("same as in") even when that is not what it sends:
        # trust the datagram's length, which must be whole frames of whole packets.
        frame_bytes = h.buffer_frames * sample_bytes(h.bits)
        body = len(data) - HEADER_BYTES
        if body <= 0 or body % frame_bytes:
            raise JackTripError(
                f"datagram of {len(data)} bytes does not hold whole {h.buffer_frames}-frame "
                f"{h.bits}-bit channels"
            )
        return [Packet(h, bytes(data[HEADER_BYTES:]))]
    packets = []
    for off in range(0, len(data), size):
        if off and not any(data[off : off + size]):
            # JackTrip fills its redundancy with zeros until it has sent that many
            # packets: its first datagrams end in empty slots, which hold nothing.
            break
        hk = parse_header(data[off : off + HEADER_BYTES])
        if (hk.buffer_frames, hk.bits, hk.sent_channels) != (
            h.buffer_frames,
            h.bits,
            h.sent_channels,
        ):
            raise JackTripError("redundant packets in one datagram disagree")
        packets.append(Packet(hk, bytes(data[off + HEADER_BYTES : off + size])))
    return packets


def encode_audio(block: np.ndarray, bits: int) -> bytes:
    """Float32 (frames, channels) to JackTrip's layout: channel after channel."""
    planar = np.ascontiguousarray(np.asarray(block, dtype=np.float32).T)
    if bits == 32:
        return planar.astype("<f4").tobytes()
    if bits == 8:
        return np.clip(np.rint(planar * 128.0), -128, 127).astype("i1").tobytes()
    if bits == 16:
        return np.clip(np.rint(planar * 32768.0), -32768, 32767).astype("<i2").tobytes()
    if bits == 24:
        v = np.clip(np.rint(planar.astype(np.float64) * 8388608.0), -8388608, 8388607)
        v = v.astype(np.int32)
        out = np.empty(v.shape + (3,), dtype=np.uint8)
        hi = (v >> 8).astype("<i2")
        out[..., :2] = hi.view(np.uint8).reshape(v.shape + (2,))
        out[..., 2] = (v & 0xFF).astype(np.uint8)
        return out.tobytes()
    raise JackTripError(f"bit resolution {bits}: JackTrip uses 8, 16, 24 or 32")


def decode_audio(audio: bytes, frames: int, bits: int) -> np.ndarray:
    """JackTrip's channel-after-channel audio to float32 (frames, channels)."""
    sb = sample_bytes(bits)
    if frames <= 0 or len(audio) % (frames * sb):
        raise JackTripError(f"{len(audio)} bytes are not whole {frames}-frame channels")
    channels = len(audio) // (frames * sb)
    if bits == 32:
        planar = np.frombuffer(audio, dtype="<f4").astype(np.float32)
        planar = np.nan_to_num(planar, nan=0.0, posinf=1.0, neginf=-1.0)
    elif bits == 8:
        planar = np.frombuffer(audio, dtype="i1").astype(np.float32) / np.float32(128.0)
    elif bits == 16:
        planar = np.frombuffer(audio, dtype="<i2").astype(np.float32) / np.float32(32768.0)
    else:
        raw = np.frombuffer(audio, dtype=np.uint8).reshape(-1, 3)
        hi = raw[:, :2].copy().view("<i2").reshape(-1).astype(np.float64)
        planar = ((hi + raw[:, 2] / 256.0) / 32768.0).astype(np.float32)
    return np.ascontiguousarray(planar.reshape(channels, frames).T)


def build_packet(
    block: np.ndarray,
    seq: int,
    timestamp_us: int,
    rate_hz: int,
    bits: int,
    channels_in: int,
) -> bytes:
    """One JackTrip datagram for a float32 (frames, channels) block.

    ``channels_in`` is how many channels we play (what we want back); the
    "channels out" field says 0 (same) when we send as many, else the count.
    """
    if rate_hz not in RATE_CODES:
        raise JackTripError(f"JackTrip runs at {', '.join(map(str, RATE_CODES))} Hz, not {rate_hz}")
    frames, channels = block.shape
    out = 0 if channels == channels_in else channels
    header = Header(
        timestamp_us & 0xFFFFFFFFFFFFFFFF,
        seq & 0xFFFF,
        frames,
        RATE_CODES[rate_hz],
        bits,
        channels_in,
        out,
    )
    return header.pack() + encode_audio(block, bits)
