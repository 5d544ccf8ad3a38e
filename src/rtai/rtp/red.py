"""RFC 2198 redundant audio data (RED): earlier blocks carried along in each packet.

A RED payload is a list of block headers followed by the blocks' data, oldest
first and the primary (this packet's own block) last::

    redundant header (4 bytes): F=1 | block PT (7) | timestamp offset (14) | length (10)
    primary header   (1 byte):  F=0 | block PT (7)

The timestamp offset says how far before the packet's timestamp the redundant
block starts, so the receiver knows which earlier packet it stands in for.
Offsets reach 16383 timestamp units and lengths 1023 bytes: blocks beyond either
limit are left out by :func:`encode_red`.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from rtai.rtp.packet import RtpError

RED_PAYLOAD_TYPE = 121
MAX_OFFSET = (1 << 14) - 1
MAX_BLOCK_BYTES = (1 << 10) - 1


@dataclass(frozen=True, slots=True)
class RedBlock:
    payload_type: int
    timestamp_offset: int  # 0 for the primary
    data: bytes


def encode_red(primary_pt: int, primary: bytes, redundant: list[tuple[int, bytes]]) -> bytes:
    """Build a RED payload. ``redundant`` holds ``(timestamp_offset, data)``, oldest first,
    all of the primary's payload type; blocks that do not fit the header are skipped."""
    headers = bytearray()
    bodies = []
    for offset, data in redundant:
        if not 0 < offset <= MAX_OFFSET or len(data) > MAX_BLOCK_BYTES:
            continue
        headers += struct.pack("!BHB", 0x80 | primary_pt, (offset << 2) | (len(data) >> 8),
                               len(data) & 0xFF)  # fmt: skip
        bodies.append(data)
    headers.append(primary_pt & 0x7F)
    return bytes(headers) + b"".join(bodies) + primary


def decode_red(payload: bytes) -> list[RedBlock]:
    """Split a RED payload into blocks, oldest first, primary last; RtpError if malformed."""
    headers: list[tuple[int, int, int]] = []
    pos, n = 0, len(payload)
    while True:
        if pos >= n:
            raise RtpError("RED payload ends inside its block headers")
        b0 = payload[pos]
        if not b0 & 0x80:
            primary_pt = b0 & 0x7F
            pos += 1
            break
        if pos + 4 > n:
            raise RtpError("RED block header truncated")
        word = int.from_bytes(payload[pos + 1 : pos + 4], "big")
        headers.append((b0 & 0x7F, word >> 10, word & 0x3FF))
        pos += 4
        if len(headers) > 16:
            raise RtpError("RED payload with more than 16 redundant blocks")
    blocks = []
    for pt, offset, length in headers:
        if pos + length > n:
            raise RtpError("RED block runs past the end of the payload")
        blocks.append(RedBlock(pt, offset, bytes(payload[pos : pos + length])))
        pos += length
    blocks.append(RedBlock(primary_pt, 0, bytes(payload[pos:])))
    return blocks
