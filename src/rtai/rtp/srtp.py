"""SRTP and SRTCP with AEAD_AES_128_GCM (RFC 7714), pure (sans-I/O).

One :class:`SrtpSender` seals what one side sends and one :class:`SrtpReceiver`
opens what it receives; a call has one of each per direction, keyed by
:mod:`rtai.pairing` from the call's key exchange (so the two directions never share
a key). The AEAD itself is the ``cryptography`` package's ``AESGCM``; this module
only lays out nonces, associated data and trailers as RFC 7714 says:

* SRTP (RFC 7714 sections 8 and 9): the 12-octet IV is
  ``(00 00 || SSRC || ROC || SEQ) XOR salt``; the associated data is the whole RTP
  header including CSRCs and header extensions; the payload is encrypted and the
  16-octet tag appended. No MKI.
* SRTCP (RFC 7714 section 9, 17): the IV is
  ``(00 00 || SSRC || 00 00 || 0 || SRTCP index) XOR salt``; the associated data is
  the first 8 octets of the compound packet and the E-flag/index word; the rest is
  encrypted and the packet ends ``ciphertext || tag || E=1 | 31-bit index``.
* The rollover counter (ROC) is estimated as RFC 3711 section 3.3.1 describes and
  committed only after the packet authenticated.
* Replays: a sliding window of :data:`REPLAY_WINDOW` packet indices (RFC 3711
  section 3.3.2) per direction, on the 48-bit SRTP index (so it works across the
  16-bit sequence wrap) and on the 31-bit SRTCP index.

Session keys are not derived with RFC 3711's AES-CM key derivation: rtai derives
the four SRTP/SRTCP keys and salts directly with HKDF-SHA256 from each call's fresh
key exchange (see :mod:`rtai.pairing` and docs/security.md).

Cheap rejection: every check that costs no cryptography (length, version, SSRC,
replay window) runs before the AEAD; nothing beyond the header is parsed before the
tag verified. Every failure raises :class:`SrtpError` (and nothing else) with a
``kind`` naming the counter it belongs to.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

KEY_BYTES = 16
SALT_BYTES = 12
TAG_BYTES = 16
RTP_HEADER_BYTES = 12
RTCP_HEADER_BYTES = 8
SRTCP_TRAILER_BYTES = 4
REPLAY_WINDOW = 128
MAX_SRTCP_INDEX = 0x7FFFFFFF
MAX_SRTP_INDEX = (1 << 48) - 1
E_FLAG = 0x80000000

_U16 = struct.Struct("!H")
_U32 = struct.Struct("!I")
_SEQ_SSRC = struct.Struct("!H4xI")  # RTP: sequence number at 2, SSRC at 8


class SrtpError(ValueError):
    """A datagram refused by SRTP: ``kind`` is malformed, wrong_source, replayed or
    auth_failed."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


@dataclass(frozen=True)
class SrtpKeys:
    """Session keys for one direction: SRTP and SRTCP each get a key and a salt."""

    rtp_key: bytes
    rtp_salt: bytes
    rtcp_key: bytes
    rtcp_salt: bytes

    def __post_init__(self) -> None:
        for k in (self.rtp_key, self.rtcp_key):
            if len(k) != KEY_BYTES:
                raise ValueError(f"SRTP keys are {KEY_BYTES} bytes")
        for s in (self.rtp_salt, self.rtcp_salt):
            if len(s) != SALT_BYTES:
                raise ValueError(f"SRTP salts are {SALT_BYTES} bytes")


def rtp_iv(salt: bytes | int, ssrc: int, roc: int, seq: int) -> bytes:
    """RFC 7714 section 8.1: ``(00 00 || SSRC || ROC || SEQ) XOR salt`` (the salt as
    12 bytes or as the integer they spell, big-endian)."""
    if isinstance(salt, bytes):
        salt = int.from_bytes(salt, "big")
    return ((ssrc << 48 | (roc & 0xFFFFFFFF) << 16 | seq) ^ salt).to_bytes(SALT_BYTES, "big")


def rtcp_iv(salt: bytes | int, ssrc: int, index: int) -> bytes:
    """RFC 7714 section 9.1: ``(00 00 || SSRC || 00 00 || 0 || index) XOR salt``."""
    if isinstance(salt, bytes):
        salt = int.from_bytes(salt, "big")
    return ((ssrc << 48 | index & MAX_SRTCP_INDEX) ^ salt).to_bytes(SALT_BYTES, "big")


def rtp_header_length(data: bytes) -> int:
    """Length of the RTP header (fixed part, CSRCs, header extension) of ``data``;
    raises :class:`SrtpError` when it does not fit."""
    n = len(data)
    if n < RTP_HEADER_BYTES or data[0] >> 6 != 2:
        raise SrtpError("malformed", "not an RTP packet")
    length = RTP_HEADER_BYTES + 4 * (data[0] & 0x0F)
    if data[0] & 0x10:
        if n < length + 4:
            raise SrtpError("malformed", "RTP header extension cut short")
        length += 4 + 4 * _U16.unpack_from(data, length + 2)[0]
    if n < length:
        raise SrtpError("malformed", "RTP header cut short")
    return length


def estimate_index(roc: int, s_l: int, seq: int) -> int:
    """RFC 3711 section 3.3.1: the 48-bit index of ``seq`` given the highest
    sequence number ``s_l`` seen so far with rollover counter ``roc``."""
    if s_l < 32768:
        v = roc - 1 if seq - s_l > 32768 else roc
    else:
        v = roc + 1 if s_l - 32768 > seq else roc
    return (v << 16) | seq  # v may be -1 before the first wrap: a negative index


class ReplayWindow:
    """RFC 3711 section 3.3.2 sliding window over packet indices.

    ``check(i)`` says whether index ``i`` may be accepted (new and not too old);
    ``commit(i)`` records it, and must only be called after the packet authenticated.
    """

    def __init__(self, size: int = REPLAY_WINDOW) -> None:
        self.size = size
        self.highest = -1  # no packet yet
        self.bits = 0  # bit k set: index highest - k was received

    def check(self, index: int) -> bool:
        if index < 0:
            return False
        if self.highest < 0 or index > self.highest:
            return True
        delta = self.highest - index
        return delta < self.size and not (self.bits >> delta) & 1

    def commit(self, index: int) -> None:
        if index > self.highest:
            shift = index - self.highest if self.highest >= 0 else self.size
            self.bits = ((self.bits << shift) | 1) & ((1 << self.size) - 1)
            self.highest = index
        else:
            self.bits |= 1 << (self.highest - index)


class SrtpSender:
    """Seals the RTP and RTCP one side sends with one direction's keys."""

    def __init__(self, keys: SrtpKeys) -> None:
        self._rtp = AESGCM(keys.rtp_key)
        self._rtcp = AESGCM(keys.rtcp_key)
        self._rtp_salt = int.from_bytes(keys.rtp_salt, "big")
        self._rtcp_salt = int.from_bytes(keys.rtcp_salt, "big")
        self._index = -1  # the 48-bit index of the last RTP packet sealed
        self._rtcp_index = 0

    def protect_rtp(self, packet: bytes) -> bytes:
        """Seal one RTP packet: header unchanged, payload encrypted, tag appended."""
        hlen = rtp_header_length(packet)
        seq, ssrc = _SEQ_SSRC.unpack_from(packet, 2)
        if self._index < 0:
            index = seq
        else:
            last = self._index
            index = estimate_index(last >> 16, last & 0xFFFF, seq)
            if index < 0:
                index = seq  # cannot go below the first packet's ROC of 0
        if index > MAX_SRTP_INDEX:
            raise SrtpError("malformed", "SRTP index exhausted: the call must be rekeyed")
        self._index = max(self._index, index)
        iv = rtp_iv(self._rtp_salt, ssrc, index >> 16, seq)
        header = packet[:hlen]
        return header + self._rtp.encrypt(iv, packet[hlen:], header)

    def protect_rtcp(self, packet: bytes) -> bytes:
        """Seal one RTCP compound packet (E flag set, next SRTCP index)."""
        if len(packet) < RTCP_HEADER_BYTES or packet[0] >> 6 != 2:
            raise SrtpError("malformed", "not an RTCP packet")
        index = self._rtcp_index
        if index > MAX_SRTCP_INDEX:
            raise SrtpError("malformed", "SRTCP index exhausted: the call must be rekeyed")
        self._rtcp_index = index + 1
        ssrc = _U32.unpack_from(packet, 4)[0]
        trailer = _U32.pack(E_FLAG | index)
        head = packet[:RTCP_HEADER_BYTES]
        iv = rtcp_iv(self._rtcp_salt, ssrc, index)
        return head + self._rtcp.encrypt(iv, packet[RTCP_HEADER_BYTES:], head + trailer) + trailer


class SrtpReceiver:
    """Opens the RTP and RTCP of one remote SSRC with one direction's keys.

    Anything that fails raises :class:`SrtpError`; state (ROC, highest sequence
    number, replay windows) changes only when a packet authenticated.
    """

    def __init__(self, keys: SrtpKeys, ssrc: int, window: int = REPLAY_WINDOW) -> None:
        self.ssrc = ssrc
        self._rtp = AESGCM(keys.rtp_key)
        self._rtcp = AESGCM(keys.rtcp_key)
        self._rtp_salt = int.from_bytes(keys.rtp_salt, "big")
        self._rtcp_salt = int.from_bytes(keys.rtcp_salt, "big")
        self.roc = 0
        self.s_l: int | None = None  # highest sequence number authenticated
        self.window = ReplayWindow(window)
        self.rtcp_window = ReplayWindow(window)

    def unprotect_rtp(self, data: bytes) -> bytes:
        """Return the plain RTP packet (header + payload) of an authentic SRTP packet."""
        hlen = rtp_header_length(data)
        if len(data) < hlen + TAG_BYTES:
            raise SrtpError("malformed", "SRTP packet shorter than its tag")
        seq, ssrc = _SEQ_SSRC.unpack_from(data, 2)
        if ssrc != self.ssrc:
            raise SrtpError("wrong_source", f"SRTP from SSRC {ssrc:#010x}")
        index = seq if self.s_l is None else estimate_index(self.roc, self.s_l, seq)
        if not self.window.check(index):
            raise SrtpError("replayed", f"SRTP index {index} replayed or too old")
        header = data[:hlen]
        try:
            payload = self._rtp.decrypt(
                rtp_iv(self._rtp_salt, ssrc, index >> 16, seq), data[hlen:], header
            )
        except InvalidTag:
            if self.s_l is not None:
                raise SrtpError("auth_failed", "SRTP authentication failed") from None
            # Nothing received yet and the sender may already have wrapped (its first
            # packets lost, RFC 3711 section 3.3.1): the only other candidate is ROC 1.
            index = 1 << 16 | seq
            try:
                payload = self._rtp.decrypt(
                    rtp_iv(self._rtp_salt, ssrc, 1, seq), data[hlen:], header
                )
            except InvalidTag:
                raise SrtpError("auth_failed", "SRTP authentication failed") from None
        self.window.commit(index)
        if self.s_l is None or index > (self.roc << 16 | self.s_l):
            self.roc, self.s_l = index >> 16, seq
        return header + payload

    def unprotect_rtcp(self, data: bytes) -> bytes:
        """Return the plain RTCP compound packet of an authentic SRTCP packet."""
        n = len(data)
        if n < RTCP_HEADER_BYTES + TAG_BYTES + SRTCP_TRAILER_BYTES or data[0] >> 6 != 2:
            raise SrtpError("malformed", "SRTCP packet too short")
        ssrc = _U32.unpack_from(data, 4)[0]
        if ssrc != self.ssrc:
            raise SrtpError("wrong_source", f"SRTCP from SSRC {ssrc:#010x}")
        word = _U32.unpack_from(data, n - SRTCP_TRAILER_BYTES)[0]
        if not word & E_FLAG:
            raise SrtpError("auth_failed", "SRTCP without encryption is not accepted")
        index = word & MAX_SRTCP_INDEX
        if not self.rtcp_window.check(index):
            raise SrtpError("replayed", f"SRTCP index {index} replayed or too old")
        head = data[:RTCP_HEADER_BYTES]
        trailer = data[n - SRTCP_TRAILER_BYTES :]
        iv = rtcp_iv(self._rtcp_salt, ssrc, index)
        try:
            body = self._rtcp.decrypt(
                iv, data[RTCP_HEADER_BYTES : n - SRTCP_TRAILER_BYTES], head + trailer
            )
        except InvalidTag:
            raise SrtpError("auth_failed", "SRTCP authentication failed") from None
        self.rtcp_window.commit(index)
        return head + body


def protected_overhead_bytes(rtcp: bool = False) -> int:
    """Bytes SRTP adds to a packet: the tag, and for SRTCP the index word."""
    return TAG_BYTES + (SRTCP_TRAILER_BYTES if rtcp else 0)
