"""Session setup messages and the caller's handshake state machine (sans-I/O).

Before media flows the caller and the listener agree on sample rate, channels,
block size and codec. The messages travel on the media port; RFC 7983 style
demultiplexing tells them apart by the first byte: RTP and RTCP start with
128..191, a handshake message starts with the ASCII magic ``RTAI`` (0x52).

Wire form: ``b"RTAI"``, one byte protocol version, one byte message type, then
a UTF-8 JSON object (at most :data:`MAX_MESSAGE_BYTES` in all).

Reconciliation rules (see docs/protocol.md): the sample rate and block size must
be equal on both sides (they decide timing; a mismatch is refused with a message
naming the option to change); the channel count is reconciled to the smaller of
the two (the stereo side mixes down what it sends and spreads what it plays);
the codec is the caller's first preference that the listener also has.
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import MISSING, asdict, dataclass
from enum import IntEnum
from typing import Any

MAGIC = b"RTAI"
PROTOCOL_VERSION = 1
MAX_MESSAGE_BYTES = 1200
HELLO_RETRY_S = 0.25
HELLO_TIMEOUT_S = 5.0
KEEPALIVE_S = 1.0
PEER_TIMEOUT_S = 5.0


class HandshakeError(ValueError):
    """Bytes that are not a valid handshake message."""


class MsgType(IntEnum):
    HELLO = 1
    ACCEPT = 2
    REJECT = 3
    KEEPALIVE = 4
    BYE = 5
    CONFIRM = 6  # the caller's key confirmation (encrypted calls)


def is_handshake(data: bytes) -> bool:
    return data[:4] == MAGIC


@dataclass(frozen=True)
class MediaParams:
    """What one side can do: its audio format and the codecs it offers, best first."""

    rate_hz: int
    channels: int
    block_frames: int
    codecs: tuple[str, ...] = ("pcm",)


@dataclass(frozen=True)
class Hello:
    session: str
    rate_hz: int
    channels: int
    block_frames: int
    codecs: tuple[str, ...]
    ssrc: int
    clock_id: str
    software: str = ""
    security: str = "insecure"  # rtai.pairing.SECURE when the caller encrypts
    pake: str = ""  # the caller's SPAKE2 message, hex


@dataclass(frozen=True)
class Accept:
    session: str
    rate_hz: int
    channels: int
    block_frames: int
    codec: str
    payload_type: int
    ssrc: int
    clock_id: str
    pake: str = ""  # the listener's SPAKE2 message, hex
    confirm: str = ""  # the listener's key confirmation, hex


@dataclass(frozen=True)
class Reject:
    session: str
    reason: str


@dataclass(frozen=True)
class Keepalive:
    session: str


@dataclass(frozen=True)
class Bye:
    session: str
    reason: str = ""


@dataclass(frozen=True)
class Confirm:
    session: str
    confirm: str  # the caller's key confirmation, hex


Message = Hello | Accept | Reject | Keepalive | Bye | Confirm

_TYPES: dict[MsgType, type] = {
    MsgType.HELLO: Hello,
    MsgType.ACCEPT: Accept,
    MsgType.REJECT: Reject,
    MsgType.KEEPALIVE: Keepalive,
    MsgType.BYE: Bye,
    MsgType.CONFIRM: Confirm,
}
_TYPE_OF = {cls: t for t, cls in _TYPES.items()}

# Field name -> accepted Python type and range check, for strict decoding.
_INT_RANGES = {
    "rate_hz": (8000, 384000),
    "channels": (1, 2),
    "block_frames": (16, 4096),
    "payload_type": (0, 127),
    "ssrc": (0, 0xFFFFFFFF),
}


def encode_message(msg: Message) -> bytes:
    body = asdict(msg)
    data = (
        MAGIC
        + bytes((PROTOCOL_VERSION, _TYPE_OF[type(msg)]))
        + json.dumps(body, separators=(",", ":")).encode()
    )
    if len(data) > MAX_MESSAGE_BYTES:
        raise HandshakeError("handshake message too long")
    return data


def decode_message(data: bytes) -> Message:
    """Parse a handshake datagram; raise :class:`HandshakeError` on anything wrong."""
    if len(data) > MAX_MESSAGE_BYTES:
        raise HandshakeError(f"handshake message of {len(data)} bytes is oversized")
    if len(data) < 6 or data[:4] != MAGIC:
        raise HandshakeError("not a handshake message")
    if data[4] != PROTOCOL_VERSION:
        raise HandshakeError(f"handshake protocol version {data[4]}, this rtai speaks 1")
    try:
        cls = _TYPES[MsgType(data[5])]
    except ValueError:
        raise HandshakeError(f"unknown handshake message type {data[5]}") from None
    try:
        body = json.loads(data[6:].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        raise HandshakeError("handshake body is not valid JSON") from None
    if not isinstance(body, dict):
        raise HandshakeError("handshake body is not an object")
    return cls(**_checked_fields(cls, body))


def _checked_fields(cls: type, body: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, f in cls.__dataclass_fields__.items():
        if name not in body:
            if f.default is not MISSING:
                continue
            raise HandshakeError(f"handshake {cls.__name__} lacks field {name!r}")
        value = body[name]
        if name in _INT_RANGES:
            lo, hi = _INT_RANGES[name]
            if type(value) is not int or not lo <= value <= hi:
                raise HandshakeError(f"handshake field {name}={value!r} out of range")
        elif name == "codecs":
            if (
                not isinstance(value, list)
                or not 1 <= len(value) <= 16
                or not all(isinstance(c, str) and 0 < len(c) <= 32 for c in value)
            ):
                raise HandshakeError("handshake field codecs is not a list of names")
            value = tuple(value)
        elif not isinstance(value, str) or len(value) > 256:
            raise HandshakeError(f"handshake field {name} is not a short string")
        out[name] = value
    return out


def new_session_id() -> str:
    return secrets.token_hex(8)


def local_clock_id() -> str:
    """Identifies this host's CLOCK_MONOTONIC: equal ids mean comparable capture times."""
    try:
        with open("/proc/sys/kernel/random/boot_id") as f:
            return "boot:" + f.read().strip()
    except OSError:
        return "host:" + os.uname().nodename


def negotiate(
    offer: Hello, local: MediaParams, local_ssrc: int, clock_id: str, payload_types: dict[str, int]
) -> Accept | Reject:
    """The listener's answer to an offer."""
    if offer.rate_hz != local.rate_hz:
        return Reject(
            offer.session,
            f"sample rate mismatch: caller {offer.rate_hz} Hz, listener {local.rate_hz} Hz; "
            f"use the same --rate on both sides",
        )
    if offer.block_frames != local.block_frames:
        return Reject(
            offer.session,
            f"block size mismatch: caller {offer.block_frames}, listener "
            f"{local.block_frames} frames; use the same --frame on both sides",
        )
    common = [c for c in offer.codecs if c in local.codecs]
    if not common:
        return Reject(
            offer.session,
            f"no common codec: caller offers {', '.join(offer.codecs)}, listener has "
            f"{', '.join(local.codecs)}",
        )
    codec = common[0]
    return Accept(
        session=offer.session,
        rate_hz=local.rate_hz,
        channels=min(offer.channels, local.channels),
        block_frames=local.block_frames,
        codec=codec,
        payload_type=payload_types[codec],
        ssrc=local_ssrc,
        clock_id=clock_id,
    )


@dataclass
class CallerHandshake:
    """The caller's side: send HELLO until ACCEPT or REJECT, or give up.

    ``poll(now_s)`` returns the bytes to (re)send, or None; ``timed_out`` turns
    true after :data:`HELLO_TIMEOUT_S` without an answer. ``receive`` returns the
    peer's Accept or Reject for our session and ignores anything else.
    """

    hello: Hello
    started_s: float
    last_sent_s: float | None = None
    result: Accept | Reject | None = None

    def poll(self, now_s: float) -> bytes | None:
        if self.result is not None or self.timed_out(now_s):
            return None
        if self.last_sent_s is None or now_s - self.last_sent_s >= HELLO_RETRY_S:
            self.last_sent_s = now_s
            return encode_message(self.hello)
        return None

    def timed_out(self, now_s: float) -> bool:
        return self.result is None and now_s - self.started_s >= HELLO_TIMEOUT_S

    def receive(self, msg: Message) -> Accept | Reject | None:
        if self.result is None and isinstance(msg, Accept | Reject):
            if msg.session == self.hello.session:
                self.result = msg
                return msg
        return None


@dataclass
class Liveness:
    """Keepalive and peer-timeout bookkeeping for an established call."""

    now_s: float
    last_rx_s: float = 0.0
    last_tx_s: float = 0.0

    def __post_init__(self) -> None:
        self.last_rx_s = self.now_s
        self.last_tx_s = self.now_s

    def heard(self, now_s: float) -> None:
        self.last_rx_s = now_s

    def keepalive_due(self, now_s: float) -> bool:
        if now_s - self.last_tx_s >= KEEPALIVE_S:
            self.last_tx_s = now_s
            return True
        return False

    def peer_lost(self, now_s: float) -> bool:
        return now_s - self.last_rx_s >= PEER_TIMEOUT_S
