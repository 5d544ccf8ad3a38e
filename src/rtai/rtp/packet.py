"""RTP packets (RFC 3550 section 5.1) with RFC 8285 header extensions.

A packet is an immutable dataclass; :func:`parse_rtp` turns bytes into one and
:meth:`RtpPacket.serialize` turns it back. Every malformed input raises
:class:`RtpError` (a ``ValueError``) and nothing else, so the receive path can
count and drop it with a single ``except``.

Header extensions use the one-byte form (profile 0xBEDE) when every element fits
(id 1..14, 1..16 bytes) and the two-byte form (0x100x) otherwise, as RFC 8285
section 4 describes.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

RTP_VERSION = 2
RTP_HEADER_BYTES = 12
ONE_BYTE_PROFILE = 0xBEDE
TWO_BYTE_PROFILE_MASK = 0xFFF0
TWO_BYTE_PROFILE = 0x1000
MAX_DATAGRAM_BYTES = 1500 * 8  # anything larger is refused before parsing

_HEADER = struct.Struct("!BBHII")


class RtpError(ValueError):
    """A datagram that is not a well-formed RTP packet."""


@dataclass(frozen=True, slots=True)
class RtpPacket:
    """One RTP packet. ``extensions`` maps an RFC 8285 element id to its bytes."""

    payload_type: int
    sequence_number: int
    timestamp: int
    ssrc: int
    payload: bytes = b""
    marker: bool = False
    csrcs: tuple[int, ...] = ()
    extensions: dict[int, bytes] = field(default_factory=dict)

    def serialize(self) -> bytes:
        """Encode to wire bytes. Raises :class:`RtpError` for out-of-range fields."""
        if not 0 <= self.payload_type <= 127:
            raise RtpError(f"payload type {self.payload_type} out of range 0..127")
        if not 0 <= self.sequence_number <= 0xFFFF:
            raise RtpError(f"sequence number {self.sequence_number} out of range")
        if not 0 <= self.timestamp <= 0xFFFFFFFF or not 0 <= self.ssrc <= 0xFFFFFFFF:
            raise RtpError("timestamp and ssrc must fit in 32 bits")
        if len(self.csrcs) > 15:
            raise RtpError("at most 15 CSRCs")
        ext = _build_extensions(self.extensions) if self.extensions else b""
        b0 = (RTP_VERSION << 6) | (0x10 if ext else 0) | len(self.csrcs)
        b1 = (0x80 if self.marker else 0) | self.payload_type
        parts = [_HEADER.pack(b0, b1, self.sequence_number, self.timestamp, self.ssrc)]
        parts.extend(struct.pack("!I", c) for c in self.csrcs)
        parts.append(ext)
        parts.append(self.payload)
        return b"".join(parts)


def looks_like_rtp(data: bytes) -> bool:
    """True when the first byte falls in RFC 7983's RTP/RTCP range (128..191)."""
    return len(data) >= 1 and 128 <= data[0] <= 191


def parse_rtp(data: bytes) -> RtpPacket:
    """Parse one RTP datagram; raise :class:`RtpError` when it is malformed."""
    n = len(data)
    if n < RTP_HEADER_BYTES:
        raise RtpError(f"datagram of {n} bytes is shorter than an RTP header")
    if n > MAX_DATAGRAM_BYTES:
        raise RtpError(f"datagram of {n} bytes is oversized")
    b0, b1, seq, ts, ssrc = _HEADER.unpack_from(data, 0)
    if b0 >> 6 != RTP_VERSION:
        raise RtpError(f"RTP version {b0 >> 6}, expected 2")
    cc = b0 & 0x0F
    pos = RTP_HEADER_BYTES + 4 * cc
    if pos > n:
        raise RtpError("CSRC list runs past the end of the datagram")
    csrcs = struct.unpack_from(f"!{cc}I", data, RTP_HEADER_BYTES) if cc else ()
    extensions: dict[int, bytes] = {}
    if b0 & 0x10:
        if pos + 4 > n:
            raise RtpError("extension header runs past the end of the datagram")
        profile, words = struct.unpack_from("!HH", data, pos)
        start, end = pos + 4, pos + 4 + 4 * words
        if end > n:
            raise RtpError("extension block runs past the end of the datagram")
        extensions = _parse_extensions(profile, data[start:end])
        pos = end
    end = n
    if b0 & 0x20:
        pad = data[-1]
        if pad == 0 or pos + pad > n:
            raise RtpError("invalid padding length")
        end = n - pad
    return RtpPacket(
        payload_type=b1 & 0x7F,
        sequence_number=seq,
        timestamp=ts,
        ssrc=ssrc,
        payload=bytes(data[pos:end]),
        marker=bool(b1 & 0x80),
        csrcs=tuple(csrcs),
        extensions=extensions,
    )


def _parse_extensions(profile: int, block: bytes) -> dict[int, bytes]:
    out: dict[int, bytes] = {}
    i, n = 0, len(block)
    if profile == ONE_BYTE_PROFILE:
        while i < n:
            b = block[i]
            if b == 0:  # padding byte
                i += 1
                continue
            ext_id, length = b >> 4, (b & 0x0F) + 1
            if ext_id == 15:  # reserved: stop processing (RFC 8285 4.2)
                break
            if i + 1 + length > n:
                raise RtpError("one-byte extension element runs past its block")
            out[ext_id] = bytes(block[i + 1 : i + 1 + length])
            i += 1 + length
    elif profile & TWO_BYTE_PROFILE_MASK == TWO_BYTE_PROFILE:
        while i < n:
            if block[i] == 0:
                i += 1
                continue
            if i + 2 > n:
                raise RtpError("two-byte extension element header truncated")
            ext_id, length = block[i], block[i + 1]
            if i + 2 + length > n:
                raise RtpError("two-byte extension element runs past its block")
            out[ext_id] = bytes(block[i + 2 : i + 2 + length])
            i += 2 + length
    # Any other profile is an extension we do not understand: ignore its contents.
    return out


def _build_extensions(extensions: dict[int, bytes]) -> bytes:
    one_byte = all(1 <= k <= 14 and 1 <= len(v) <= 16 for k, v in extensions.items())
    body = bytearray()
    if one_byte:
        for k, v in sorted(extensions.items()):
            body.append((k << 4) | (len(v) - 1))
            body += v
        profile = ONE_BYTE_PROFILE
    else:
        for k, v in sorted(extensions.items()):
            if not 1 <= k <= 255 or len(v) > 255:
                raise RtpError(f"extension {k} of {len(v)} bytes cannot be encoded")
            body += bytes((k, len(v))) + v
        profile = TWO_BYTE_PROFILE
    body += b"\x00" * (-len(body) % 4)
    return struct.pack("!HH", profile, len(body) // 4) + bytes(body)
