"""SDP (RFC 8866) for one plain RTP audio stream: parse what others write, write ours.

Only what a one-way RTP audio stream needs: the connection address (``c=``), the
first ``m=audio`` line (port, payload type), its ``a=rtpmap`` (encoding, clock
rate, channels), ``a=fmtp`` parameters and ``a=ptime``. Static payload types
without an rtpmap (RFC 3551: 10 is L16 44.1 kHz stereo, 11 mono) are understood.

Two Opus quirks (RFC 7587 section 7): the rtpmap always says ``opus/48000/2``
whatever the audio is, and the real channel count is in the ``fmtp`` parameters
``stereo`` (what the receiver wants) and ``sprop-stereo`` (what the sender sends).

Pure: text in, :class:`SdpStream` out, and back. Every malformed description
raises :class:`SdpError` (a ``ValueError``) with a one-line message and nothing else.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

MAX_SDP_CHARS = 64 * 1024

# RFC 3551 table 4: static audio payload types rtai can play.
_STATIC = {10: ("L16", 44100, 2), 11: ("L16", 44100, 1)}


class SdpError(ValueError):
    """A session description rtai cannot use; the message says why in one line."""


@dataclass
class SdpStream:
    """One RTP audio stream as an SDP describes it.

    ``channels`` is the channel count of the audio itself: for Opus it comes from
    ``sprop-stereo`` (or ``stereo``), not from the rtpmap's fixed 2.
    """

    encoding: str  # as in the rtpmap: "L16" or "opus" (case kept)
    payload_type: int
    clock_hz: int
    channels: int
    port: int
    address: str = "0.0.0.0"
    ptime_ms: float | None = None
    fmtp: dict[str, str] = field(default_factory=dict)
    session_name: str = "rtai"

    @property
    def codec(self) -> str:
        """rtai's codec name for the encoding: ``pcm`` or ``opus``; SdpError otherwise."""
        enc = self.encoding.lower()
        if enc == "l16":
            return "pcm"
        if enc == "opus":
            return "opus"
        raise SdpError(
            f"the SDP describes {self.encoding}/{self.clock_hz}; rtai plays L16 and opus"
        )


def parse_sdp(text: str) -> SdpStream:
    """The first audio stream of a session description."""
    if not isinstance(text, str):
        raise SdpError("an SDP is text")
    if len(text) > MAX_SDP_CHARS:
        raise SdpError(f"SDP of {len(text)} characters is too long")
    session_addr: str | None = None
    media_addr: str | None = None
    session_name = ""
    m: tuple[int, list[int]] | None = None
    in_audio = False
    rtpmap: dict[int, tuple[str, int, int | None]] = {}
    fmtp: dict[int, str] = {}
    ptime: float | None = None
    seen_v = False
    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            continue
        if len(line) < 2 or line[1] != "=" or not line[0].isalpha():
            raise SdpError(f"not an SDP line: {line[:40]!r}")
        kind, value = line[0], line[2:]
        if kind == "v":
            seen_v = True
            if value.strip() != "0":
                raise SdpError(f"SDP version {value.strip()!r}, expected 0")
        elif kind == "s" and m is None:
            session_name = value
        elif kind == "m":
            if m is not None and in_audio:
                break  # only the first audio stream
            in_audio, m_new = _parse_m(value)
            if in_audio:
                m = m_new
        elif kind == "c":
            addr = _parse_c(value)
            if m is None:
                session_addr = addr
            elif in_audio:
                media_addr = addr
        elif kind == "a" and (m is None or in_audio):
            name, _, arg = value.partition(":")
            if name == "rtpmap" and in_audio:
                pt, enc = _parse_rtpmap(arg)
                rtpmap[pt] = enc
            elif name == "fmtp" and in_audio:
                pt_text, _, params = arg.strip().partition(" ")
                fmtp[_int(pt_text, "fmtp payload type", 0, 127)] = params
            elif name == "ptime":
                ptime = _float(arg, "ptime")
    if not seen_v:
        raise SdpError("no 'v=0' line: is this an SDP file?")
    if m is None:
        raise SdpError("the SDP has no audio stream (m=audio line)")
    port, pts = m
    pt = next((p for p in pts if p in rtpmap or p in _STATIC), None)
    if pt is None:
        raise SdpError(f"no rtpmap for payload type {pts[0]}")
    encoding, clock_hz, channels = rtpmap.get(pt) or _STATIC[pt]
    params = _parse_fmtp(fmtp.get(pt, ""))
    if channels is None:
        channels = 1
    if encoding.lower() == "opus":
        if clock_hz != 48000:
            raise SdpError(f"opus must say 48000 in its rtpmap, not {clock_hz}")
        stereo = params.get("sprop-stereo", params.get("stereo", "0"))
        channels = 2 if stereo.strip() == "1" else 1
    address = media_addr or session_addr or "0.0.0.0"
    return SdpStream(
        encoding=encoding,
        payload_type=pt,
        clock_hz=clock_hz,
        channels=channels,
        port=port,
        address=address,
        ptime_ms=ptime,
        fmtp=params,
        session_name=session_name,
    )


def write_sdp(stream: SdpStream, origin_address: str = "127.0.0.1") -> str:
    """A session description for ``stream`` that ffmpeg, GStreamer and VLC can play."""
    ip = _ip_version(stream.address)
    oip = _ip_version(origin_address)
    enc = stream.encoding
    if enc.lower() == "opus":
        rtpmap = f"{enc}/48000/2"  # RFC 7587 7: always 2, whatever is sent
        params = dict(stream.fmtp)
        params.setdefault("sprop-stereo", "1" if stream.channels == 2 else "0")
        params.setdefault("stereo", "1" if stream.channels == 2 else "0")
    else:
        rtpmap = f"{enc}/{stream.clock_hz}/{stream.channels}"
        params = dict(stream.fmtp)
    lines = [
        "v=0",
        f"o=- 0 0 IN {oip} {origin_address}",
        f"s={stream.session_name or 'rtai'}",
        f"c=IN {ip} {stream.address}",
        "t=0 0",
        f"m=audio {stream.port} RTP/AVP {stream.payload_type}",
        f"a=rtpmap:{stream.payload_type} {rtpmap}",
    ]
    if params:
        fm = ";".join(f"{k}={v}" for k, v in params.items())
        lines.append(f"a=fmtp:{stream.payload_type} {fm}")
    if stream.ptime_ms is not None:
        lines.append(f"a=ptime:{stream.ptime_ms:g}")
    lines.append("a=sendonly")
    return "\r\n".join(lines) + "\r\n"


# -- helpers --------------------------------------------------------------------------


def _int(text: str, what: str, lo: int, hi: int) -> int:
    text = text.strip()
    if not text.isascii() or not text.isdigit():
        raise SdpError(f"{what} {text[:20]!r} is not a number")
    v = int(text)
    if not lo <= v <= hi:
        raise SdpError(f"{what} {v} out of range {lo}..{hi}")
    return v


def _float(text: str, what: str) -> float:
    try:
        v = float(text.strip())
    except ValueError:
        raise SdpError(f"{what} {text.strip()[:20]!r} is not a number") from None
    if not 0 < v < 10000:
        raise SdpError(f"{what} {v:g} out of range")
    return v


def _parse_m(value: str) -> tuple[bool, tuple[int, list[int]] | None]:
    parts = value.split()
    if len(parts) < 4:
        raise SdpError(f"m= line {value[:40]!r} needs media, port, proto and formats")
    if parts[0] != "audio":
        return False, None
    if not parts[2].startswith("RTP/"):
        raise SdpError(f"m=audio transport {parts[2][:20]!r}; rtai speaks RTP/AVP")
    port = _int(parts[1].split("/")[0], "m=audio port", 0, 65535)
    pts = [_int(p, "m=audio payload type", 0, 127) for p in parts[3:]]
    return True, (port, pts)


def _parse_c(value: str) -> str:
    parts = value.split()
    if len(parts) != 3 or parts[0] != "IN" or parts[1] not in ("IP4", "IP6"):
        raise SdpError(f"c= line {value[:40]!r}: expected 'IN IP4|IP6 ADDRESS'")
    addr = parts[2].split("/")[0]  # multicast TTL / count suffixes
    try:
        ipaddress.ip_address(addr)
    except ValueError:
        if not addr or len(addr) > 253 or not all(c.isalnum() or c in ".-" for c in addr):
            raise SdpError(f"c= address {addr[:40]!r} is not an address") from None
    return addr


def _parse_rtpmap(arg: str) -> tuple[int, tuple[str, int, int | None]]:
    pt_text, _, enc = arg.strip().partition(" ")
    pt = _int(pt_text, "rtpmap payload type", 0, 127)
    fields = enc.strip().split("/")
    if len(fields) not in (2, 3) or not fields[0]:
        raise SdpError(f"rtpmap {arg.strip()[:40]!r}: expected 'PT NAME/CLOCK[/CHANNELS]'")
    clock = _int(fields[1], "rtpmap clock rate", 1, 1_000_000)
    channels = _int(fields[2], "rtpmap channels", 1, 255) if len(fields) == 3 else None
    return pt, (fields[0], clock, channels)


def _parse_fmtp(params: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in params.split(";"):
        item = item.strip()
        if not item:
            continue
        k, _, v = item.partition("=")
        out[k.strip().lower()] = v.strip()
    return out


def _ip_version(addr: str) -> str:
    try:
        return "IP6" if ipaddress.ip_address(addr).version == 6 else "IP4"
    except ValueError:
        return "IP4"
