"""RTCP packets (RFC 3550 section 6): sender and receiver reports, SDES CNAME, BYE.

Pure: bytes in, dataclasses out, and back. No sockets, no clock; every time value is
passed in by the caller.

Wire layout of the common header (RFC 3550 section 6.4.1)::

     0                   1                   2                   3
     0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |V=2|P|    RC   |   PT=SR=200   |             length            |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+

``length`` counts 32-bit words minus one, including the header and any padding.
Several packets are stacked back to back into one compound packet (one datagram).

Parsing rules (:func:`parse_compound`):

- every packet must have version 2 and a packet type in 192..223 (the RTCP range of
  RFC 5761 section 4); the length fields must tile the datagram exactly;
- a set padding bit means the last octet of that packet holds the padding count,
  which must be between 1 and the packet's size minus its 4-octet header;
- report / source counts must fit inside the packet's length;
- packet types other than SR, RR, SDES and BYE (APP, XR, feedback, ...) are skipped;
- SR/RR profile-specific extensions after the report blocks are ignored; SDES items
  other than CNAME are ignored; text that is not valid UTF-8 is decoded with
  replacement characters rather than rejected, so one odd CNAME does not cost us the
  sender report travelling with it.

Any malformed input raises :class:`RtcpError` (a ``ValueError``) and nothing else.
Serializing a packet whose fields do not fit their wire widths raises it too.
"""

from __future__ import annotations

import math
import operator
import struct
from collections.abc import Iterable
from dataclasses import dataclass, field

RTCP_VERSION = 2

PT_SR = 200
PT_RR = 201
PT_SDES = 202
PT_BYE = 203
PT_APP = 204

SDES_END = 0
SDES_CNAME = 1

MAX_COUNT = 31  # the 5-bit RC / SC field
HEADER_BYTES = 4
REPORT_BLOCK_BYTES = 24
SENDER_INFO_BYTES = 20

NTP_UNIX_EPOCH_OFFSET_S = 2_208_988_800
"""Seconds from the NTP epoch (1900-01-01) to the Unix epoch (1970-01-01)."""

_U32 = 0xFFFF_FFFF
_U64 = 0xFFFF_FFFF_FFFF_FFFF
_LOST_MIN = -(1 << 23)
_LOST_MAX = (1 << 23) - 1

_HEADER = struct.Struct("!BBH")
_SENDER_INFO = struct.Struct("!IIIII")  # ntp msw, ntp lsw, rtp ts, packet count, octet count
_REPORT_BLOCK = struct.Struct("!IIIIII")  # ssrc, fraction|lost, highest, jitter, lsr, dlsr
_U32_STRUCT = struct.Struct("!I")


class RtcpError(ValueError):
    """Malformed RTCP input, or a field that does not fit its wire width."""


def _check_range(name: str, value: int, lo: int, hi: int, what: str) -> None:
    try:
        v = operator.index(value)
    except TypeError:
        raise RtcpError(f"{name}={value!r} is not an integer") from None
    if not lo <= v <= hi:
        raise RtcpError(f"{name}={value!r} does not fit in {what}")


def _check_uint(name: str, value: int, bits: int) -> None:
    _check_range(name, value, 0, (1 << bits) - 1, f"{bits} unsigned bits")


def _check_count(what: str, n: int) -> None:
    if n > MAX_COUNT:
        raise RtcpError(f"{n} {what} do not fit one RTCP packet (at most {MAX_COUNT})")


@dataclass(slots=True)
class ReportBlock:
    """One reception report block (RFC 3550 section 6.4.1), 24 octets on the wire.

    - ``ssrc``: the source this block reports on.
    - ``fraction_lost``: packets lost since the previous report, as a fraction of
      those expected, in units of 1/256 (0..255).
    - ``cumulative_lost``: packets lost since reception began, a 24-bit *signed*
      count (-2**23 .. 2**23-1); negative when duplicates outnumber losses.
    - ``highest_seq``: extended highest sequence number received (32 bits: wrap
      cycles in the high 16, sequence number in the low 16).
    - ``jitter``: interarrival jitter estimate in RTP timestamp units.
    - ``lsr``: middle 32 bits of the NTP timestamp of the last SR received from
      ``ssrc`` (0 when none).
    - ``dlsr``: delay since that SR was received, in units of 1/65536 s (0 when none).
    """

    ssrc: int
    fraction_lost: int = 0
    cumulative_lost: int = 0
    highest_seq: int = 0
    jitter: int = 0
    lsr: int = 0
    dlsr: int = 0

    def to_bytes(self) -> bytes:
        _check_uint("ssrc", self.ssrc, 32)
        _check_uint("fraction_lost", self.fraction_lost, 8)
        _check_range(
            "cumulative_lost", self.cumulative_lost, _LOST_MIN, _LOST_MAX, "24 signed bits"
        )
        _check_uint("highest_seq", self.highest_seq, 32)
        _check_uint("jitter", self.jitter, 32)
        _check_uint("lsr", self.lsr, 32)
        _check_uint("dlsr", self.dlsr, 32)
        lost_field = self.cumulative_lost & 0xFF_FFFF
        return _REPORT_BLOCK.pack(
            self.ssrc,
            (self.fraction_lost << 24) | lost_field,
            self.highest_seq,
            self.jitter,
            self.lsr,
            self.dlsr,
        )

    @classmethod
    def from_bytes(cls, data: bytes | memoryview, offset: int = 0) -> ReportBlock:
        if len(data) - offset < REPORT_BLOCK_BYTES or offset < 0:
            raise RtcpError("report block truncated")
        ssrc, word, highest, jitter, lsr, dlsr = _REPORT_BLOCK.unpack_from(data, offset)
        lost = word & 0xFF_FFFF
        if lost & 0x80_0000:
            lost -= 1 << 24
        return cls(ssrc, word >> 24, lost, highest, jitter, lsr, dlsr)


@dataclass(slots=True)
class SenderReport:
    """SR, packet type 200: the sender's clocks and counts, plus reception reports.

    ``ntp_timestamp`` is a 64-bit Q32.32 time (see :func:`ntp_from_seconds`) and
    ``rtp_timestamp`` the same instant in the media clock's units. ``packet_count``
    and ``octet_count`` count RTP packets and payload octets sent (mod 2**32).
    """

    ssrc: int
    ntp_timestamp: int = 0
    rtp_timestamp: int = 0
    packet_count: int = 0
    octet_count: int = 0
    reports: list[ReportBlock] = field(default_factory=list)

    def to_bytes(self) -> bytes:
        _check_uint("ssrc", self.ssrc, 32)
        _check_uint("ntp_timestamp", self.ntp_timestamp, 64)
        _check_uint("rtp_timestamp", self.rtp_timestamp, 32)
        _check_uint("packet_count", self.packet_count, 32)
        _check_uint("octet_count", self.octet_count, 32)
        _check_count("report blocks", len(self.reports))
        body = (
            _U32_STRUCT.pack(self.ssrc)
            + _SENDER_INFO.pack(
                self.ntp_timestamp >> 32,
                self.ntp_timestamp & _U32,
                self.rtp_timestamp,
                self.packet_count,
                self.octet_count,
            )
            + b"".join(r.to_bytes() for r in self.reports)
        )
        return _with_header(PT_SR, len(self.reports), body)


@dataclass(slots=True)
class ReceiverReport:
    """RR, packet type 201: reception reports from a participant that is not sending."""

    ssrc: int
    reports: list[ReportBlock] = field(default_factory=list)

    def to_bytes(self) -> bytes:
        _check_uint("ssrc", self.ssrc, 32)
        _check_count("report blocks", len(self.reports))
        body = _U32_STRUCT.pack(self.ssrc) + b"".join(r.to_bytes() for r in self.reports)
        return _with_header(PT_RR, len(self.reports), body)


@dataclass(slots=True)
class SdesChunk:
    """One SDES chunk: a source and its CNAME (UTF-8, at most 255 octets encoded)."""

    ssrc: int
    cname: str = ""

    def to_bytes(self) -> bytes:
        _check_uint("ssrc", self.ssrc, 32)
        text = self.cname.encode("utf-8")
        if len(text) > 255:
            raise RtcpError(f"CNAME is {len(text)} octets; at most 255 fit an SDES item")
        items = bytes([SDES_CNAME, len(text)]) + text
        # The item list ends with a null octet, then nulls up to the next 32-bit boundary.
        pad = 4 - len(items) % 4
        return _U32_STRUCT.pack(self.ssrc) + items + bytes(pad)


@dataclass(slots=True)
class Sdes:
    """SDES, packet type 202. Only the CNAME item is carried; others are dropped on parse."""

    chunks: list[SdesChunk] = field(default_factory=list)

    def to_bytes(self) -> bytes:
        _check_count("SDES chunks", len(self.chunks))
        body = b"".join(c.to_bytes() for c in self.chunks)
        return _with_header(PT_SDES, len(self.chunks), body)


@dataclass(slots=True)
class Bye:
    """BYE, packet type 203: the listed sources are leaving, with an optional reason."""

    ssrcs: list[int] = field(default_factory=list)
    reason: str | None = None

    def to_bytes(self) -> bytes:
        _check_count("BYE sources", len(self.ssrcs))
        for s in self.ssrcs:
            _check_uint("ssrc", s, 32)
        body = b"".join(_U32_STRUCT.pack(s) for s in self.ssrcs)
        if self.reason is not None:
            text = self.reason.encode("utf-8")
            if len(text) > 255:
                raise RtcpError(f"BYE reason is {len(text)} octets; at most 255 fit")
            reason = bytes([len(text)]) + text
            body += reason + bytes(-len(reason) % 4)
        return _with_header(PT_BYE, len(self.ssrcs), body)


RtcpPacket = SenderReport | ReceiverReport | Sdes | Bye


def _with_header(packet_type: int, count: int, body: bytes) -> bytes:
    # All bodies built here are already 32-bit aligned.
    length_words = (HEADER_BYTES + len(body)) // 4 - 1
    if length_words > 0xFFFF:
        raise RtcpError("RTCP packet longer than the 16-bit length field allows")
    return _HEADER.pack((RTCP_VERSION << 6) | count, packet_type, length_words) + body


def build_compound(packets: Iterable[RtcpPacket]) -> bytes:
    """Serialize ``packets`` back to back into one compound RTCP packet.

    RFC 3550 wants a compound packet to start with an SR or RR and to carry an SDES
    CNAME; that policy belongs to the caller (RFC 5506 reduced-size RTCP relaxes it),
    so the order given is kept. Raises :class:`RtcpError` for an empty list or a
    field that does not fit.
    """
    out = b"".join(p.to_bytes() for p in packets)
    if not out:
        raise RtcpError("a compound RTCP packet needs at least one packet")
    return out


def parse_compound(data: bytes | bytearray | memoryview) -> list[RtcpPacket]:
    """Parse a compound RTCP packet into its SR, RR, SDES and BYE packets, in order.

    Packets of other types are validated for version and length, then skipped.
    Raises :class:`RtcpError` on any malformed input.
    """
    buf = bytes(data)
    if len(buf) < HEADER_BYTES:
        raise RtcpError(f"RTCP datagram of {len(buf)} octets is shorter than a header")
    packets: list[RtcpPacket] = []
    pos = 0
    while pos < len(buf):
        if len(buf) - pos < HEADER_BYTES:
            raise RtcpError(f"{len(buf) - pos} stray octets after the last RTCP packet")
        first, packet_type, length_words = _HEADER.unpack_from(buf, pos)
        version = first >> 6
        if version != RTCP_VERSION:
            raise RtcpError(f"RTCP version {version}, expected {RTCP_VERSION}")
        if not 192 <= packet_type <= 223:
            raise RtcpError(f"packet type {packet_type} is outside the RTCP range 192..223")
        size = (length_words + 1) * 4
        end = pos + size
        if end > len(buf):
            raise RtcpError(
                f"RTCP length field says {size} octets but only {len(buf) - pos} remain"
            )
        body_end = end
        if first & 0x20:
            pad = buf[end - 1]
            if pad == 0 or pad > size - HEADER_BYTES:
                raise RtcpError(f"RTCP padding count {pad} invalid for a {size}-octet packet")
            body_end -= pad
        count = first & 0x1F
        body = buf[pos + HEADER_BYTES : body_end]
        parsed = _parse_one(packet_type, count, body)
        if parsed is not None:
            packets.append(parsed)
        pos = end
    return packets


def _parse_one(packet_type: int, count: int, body: bytes) -> RtcpPacket | None:
    if packet_type == PT_SR:
        return _parse_sr(count, body)
    if packet_type == PT_RR:
        return _parse_rr(count, body)
    if packet_type == PT_SDES:
        return _parse_sdes(count, body)
    if packet_type == PT_BYE:
        return _parse_bye(count, body)
    return None


def _parse_blocks(count: int, body: bytes, offset: int) -> list[ReportBlock]:
    if len(body) < offset + count * REPORT_BLOCK_BYTES:
        raise RtcpError(f"{count} report blocks do not fit a {len(body) + 4}-octet packet")
    return [ReportBlock.from_bytes(body, offset + i * REPORT_BLOCK_BYTES) for i in range(count)]


def _parse_sr(count: int, body: bytes) -> SenderReport:
    if len(body) < 4 + SENDER_INFO_BYTES:
        raise RtcpError("sender report shorter than its sender info")
    (ssrc,) = _U32_STRUCT.unpack_from(body, 0)
    ntp_msw, ntp_lsw, rtp_ts, packets, octets = _SENDER_INFO.unpack_from(body, 4)
    reports = _parse_blocks(count, body, 4 + SENDER_INFO_BYTES)
    return SenderReport(ssrc, (ntp_msw << 32) | ntp_lsw, rtp_ts, packets, octets, reports)


def _parse_rr(count: int, body: bytes) -> ReceiverReport:
    if len(body) < 4:
        raise RtcpError("receiver report has no SSRC")
    (ssrc,) = _U32_STRUCT.unpack_from(body, 0)
    return ReceiverReport(ssrc, _parse_blocks(count, body, 4))


def _parse_sdes(count: int, body: bytes) -> Sdes:
    chunks: list[SdesChunk] = []
    pos = 0
    for _ in range(count):
        if len(body) - pos < 4:
            raise RtcpError("SDES chunk truncated before its SSRC")
        (ssrc,) = _U32_STRUCT.unpack_from(body, pos)
        pos += 4
        cname = ""
        while True:
            if pos >= len(body):
                raise RtcpError("SDES item list runs past the packet without an end marker")
            item_type = body[pos]
            if item_type == SDES_END:
                pos += 1
                pos += -pos % 4  # null octets up to the next 32-bit boundary
                break
            if pos + 2 > len(body):
                raise RtcpError("SDES item truncated before its length octet")
            item_len = body[pos + 1]
            if pos + 2 + item_len > len(body):
                raise RtcpError("SDES item runs past the end of the packet")
            if item_type == SDES_CNAME:
                cname = body[pos + 2 : pos + 2 + item_len].decode("utf-8", errors="replace")
            pos += 2 + item_len
        chunks.append(SdesChunk(ssrc, cname))
    return Sdes(chunks)


def _parse_bye(count: int, body: bytes) -> Bye:
    need = 4 * count
    if len(body) < need:
        raise RtcpError(f"BYE lists {count} sources but has room for {len(body) // 4}")
    ssrcs = [_U32_STRUCT.unpack_from(body, 4 * i)[0] for i in range(count)]
    reason: str | None = None
    if len(body) > need:
        reason_len = body[need]
        if need + 1 + reason_len > len(body):
            raise RtcpError("BYE reason runs past the end of the packet")
        reason = body[need + 1 : need + 1 + reason_len].decode("utf-8", errors="replace")
    return Bye(ssrcs, reason)


def is_rtcp(data: bytes | bytearray | memoryview) -> bool:
    """True when a datagram on a shared RTP/RTCP port is RTCP (RFC 5761 section 4).

    RTCP packet types 192..223 occupy the second octet where RTP has the marker bit
    and payload type; RFC 5761 reserves RTP payload types 64..95 so the two never
    collide. Requires version 2 and at least a 4-octet header; says nothing about
    whether the rest is well formed.
    """
    return len(data) >= HEADER_BYTES and data[0] >> 6 == RTCP_VERSION and 192 <= data[1] <= 223


def ntp_from_seconds(t: float) -> int:
    """Convert ``t`` seconds to a 64-bit Q32.32 NTP-format timestamp (mod 2**64).

    The epoch is the caller's: for true wall-clock NTP time pass
    ``time.time() + NTP_UNIX_EPOCH_OFFSET_S``; for RTT measurement alone any clock
    works (e.g. ``time.monotonic()``), provided the SR timestamps and the arrival
    times later given to :func:`rtt_from_report` come from that same clock.
    Raises ``ValueError`` for NaN or infinity.
    """
    if not math.isfinite(t):
        raise ValueError(f"cannot convert {t!r} seconds to an NTP timestamp")
    seconds = math.floor(t)
    fraction = round((t - seconds) * (1 << 32))
    return ((seconds << 32) + fraction) & _U64


def seconds_from_ntp(ntp: int) -> float:
    """Inverse of :func:`ntp_from_seconds` (modulo 2**32 s)."""
    return (ntp & _U64) / (1 << 32)


def ntp_middle32(ntp: int) -> int:
    """The middle 32 bits of a 64-bit NTP timestamp (Q16.16 s): what LSR carries."""
    return (ntp >> 16) & _U32


def rtt_from_report(arrival_ntp_middle32: int, lsr: int, dlsr: int) -> float | None:
    """Round-trip time in seconds from a report block (RFC 3550 section 6.4.1).

    ``arrival_ntp_middle32`` is when the report arrived, as :func:`ntp_middle32` of
    the clock that stamped our SRs. RTT = A - LSR - DLSR, computed mod 2**32 so the
    wrap of the 16.16 fields is harmless. Returns ``None`` when ``lsr`` is 0 (the
    peer has not heard an SR yet); a negative result, from clock granularity or a
    bogus DLSR, is clamped to 0.
    """
    if lsr == 0:
        return None
    rtt_units = (arrival_ntp_middle32 - lsr - dlsr) & _U32
    if rtt_units >= 1 << 31:
        return 0.0
    return rtt_units / 65536.0
