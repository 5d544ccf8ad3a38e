"""Opus (RFC 6716) over the system libopus, one Opus frame per rtai block.

RTP framing follows RFC 7587: payload type 111 (dynamic), an RTP clock of 48 kHz
whatever the sample rate, and one block per packet. A block is one Opus frame of
2.5, 5, 10 or 20 ms at 8, 12, 16, 24 or 48 kHz; :func:`check` says what to use
otherwise. Blocks under 10 ms are always coded by the CELT layer alone, so they
carry no in-band FEC.

Concealment and FEC are libopus's own: :meth:`OpusDecoder.conceal` runs its PLC,
:meth:`OpusDecoder.recover` decodes the LBRR ("low bit-rate redundancy") copy of
the missing block that the SILK layer of the *next* packet may carry. libopus 1.3
has no ``opus_packet_has_lbrr`` and, asked for FEC from a packet without LBRR,
silently runs the PLC instead, so :func:`carries_lbrr` reads the LBRR flag from
the packet itself (RFC 6716 4.2.3-4.2.4) and ``recover`` returns None when it is
clear, letting the caller's own concealment take over.

Which packets carry LBRR is the encoder's choice: only with ``fec`` on, a
``loss_pct`` hint above 0, blocks of 10 or 20 ms, the SILK or hybrid mode (speech
at voip/audio, never lowdelay), and a SILK bit rate high enough for the hint
(libopus 1.3.1 drops LBRR at low rates rather than starve the main layer). Under
VBR the LBRR bits come out of the main layer's budget: packets stay the same size
and the lossless quality drops instead.

Delay: ``OpusEncoder.lookahead_frames`` (OPUS_GET_LOOKAHEAD) is the whole codec's
delay, 6.5 ms (2.5 ms lowdelay); the SILK and hybrid paths come out a few frames
earlier (309 rather than 312 at 48 kHz).
"""

from __future__ import annotations

import ctypes
import dataclasses

import numpy as np

from rtai.codecs import CodecError, EncoderSettings
from rtai.codecs import libopus as lo

OPUS_PAYLOAD_TYPE = 111
RTP_CLOCK_HZ = 48000  # RFC 7587 4.1: always 48 kHz
RATES_HZ = (8000, 12000, 16000, 24000, 48000)
BLOCK_MS = (2.5, 5.0, 10.0, 20.0)

APPLICATIONS = {
    "voip": lo.OPUS_APPLICATION_VOIP,
    "audio": lo.OPUS_APPLICATION_AUDIO,
    "lowdelay": lo.OPUS_APPLICATION_RESTRICTED_LOWDELAY,
}
_APPLICATION_NAMES = {value: name for name, value in APPLICATIONS.items()}
MIN_BITRATE_BPS = 500
MAX_BITRATE_BPS = 512000  # opus_defines.h; libopus 1.3.1 clamps at 300000 per channel


def block_choices(rate_hz: int) -> list[int]:
    """The block sizes (frames) Opus can code at ``rate_hz``: 2.5, 5, 10 and 20 ms."""
    return [int(rate_hz * ms) // 1000 for ms in BLOCK_MS]


def check(rate_hz: int, channels: int, block_frames: int) -> str | None:
    """Why Opus cannot run at (rate, channels, block), in one line; None when it can."""
    if rate_hz not in RATES_HZ:
        return (
            f"opus runs at {', '.join(map(str, RATES_HZ))} Hz, not {rate_hz}: "
            "use --rate 48000 (or one of those)"
        )
    if channels not in (1, 2):
        return f"opus carries 1 or 2 channels, not {channels}: use --channels 1 or 2"
    choices = block_choices(rate_hz)
    if block_frames not in choices:
        return (
            f"opus needs --frame {', '.join(map(str, choices[:-1]))} or {choices[-1]} at "
            f"--rate {rate_hz} (2.5, 5, 10 or 20 ms), not {block_frames}"
        )
    return None


def clock_rate(rate_hz: int) -> int:
    """RTP timestamp rate: 48 kHz at every sample rate (RFC 7587)."""
    return RTP_CLOCK_HZ


def _library() -> lo.Libopus:
    try:
        return lo.load()
    except lo.LibopusMissing as err:
        raise CodecError(str(err)) from None


MAX_BANDWIDTHS = {
    "nb": lo.OPUS_BANDWIDTH_NARROWBAND,  # 4 kHz audio
    "mb": lo.OPUS_BANDWIDTH_MEDIUMBAND,  # 6 kHz
    "wb": lo.OPUS_BANDWIDTH_WIDEBAND,  # 8 kHz
    "swb": lo.OPUS_BANDWIDTH_SUPERWIDEBAND,  # 12 kHz
    "fb": lo.OPUS_BANDWIDTH_FULLBAND,  # 20 kHz
}


def _check_settings(s: EncoderSettings) -> None:
    if s.application not in APPLICATIONS:
        raise CodecError(
            f"opus application must be one of {', '.join(APPLICATIONS)}, not {s.application!r}"
        )
    if not MIN_BITRATE_BPS <= s.bitrate_bps <= MAX_BITRATE_BPS:
        raise CodecError(
            f"opus bit rate must be {MIN_BITRATE_BPS}..{MAX_BITRATE_BPS} bit/s, not {s.bitrate_bps}"
        )
    if not 0 <= s.complexity <= 10:
        raise CodecError(f"opus complexity must be 0..10, not {s.complexity}")
    if s.max_bandwidth not in MAX_BANDWIDTHS:
        raise CodecError(
            f"opus bandwidth must be one of {', '.join(MAX_BANDWIDTHS)}, not {s.max_bandwidth!r}"
        )
    if not 0 <= s.loss_pct <= 100:
        raise CodecError(f"packet-loss hint must be 0..100 %, not {s.loss_pct}")


def _ctl_values(s: EncoderSettings) -> dict[int, int]:
    """The SET requests (and values) that carry ``s``, application aside."""
    return {
        lo.OPUS_SET_BITRATE: int(s.bitrate_bps),
        lo.OPUS_SET_COMPLEXITY: int(s.complexity),
        lo.OPUS_SET_VBR: int(bool(s.vbr)),
        lo.OPUS_SET_DTX: int(bool(s.dtx)),
        lo.OPUS_SET_INBAND_FEC: int(bool(s.fec)),
        lo.OPUS_SET_PACKET_LOSS_PERC: int(s.loss_pct),
        lo.OPUS_SET_MAX_BANDWIDTH: MAX_BANDWIDTHS[s.max_bandwidth],
    }


class OpusEncoder:
    """Encodes float32 blocks shaped (block_frames, channels) into Opus packets.

    ``configure`` may be called between blocks from the thread that encodes; it
    issues only the CTLs whose values changed. The application (voip, audio,
    lowdelay) is fixed when a libopus encoder is created (``OPUS_SET_APPLICATION``
    is refused after the first frame), so changing it creates a new encoder: the
    next packet starts from a fresh state, a short discontinuity the decoder hides.
    Packets of 1 or 2 bytes are DTX frames (nothing to code, with ``dtx`` on).
    """

    def __init__(
        self,
        rate_hz: int,
        channels: int,
        block_frames: int,
        settings: EncoderSettings | None = None,
    ) -> None:
        reason = check(rate_hz, channels, block_frames)
        if reason:
            raise CodecError(reason)
        settings = settings if settings is not None else EncoderSettings()
        _check_settings(settings)
        self._lib = _library()
        self.rate_hz = rate_hz
        self.channels = channels
        self.block_frames = block_frames
        self._state: int | None = None
        self._application = ""
        self._applied: dict[int, int] = {}
        self._in = np.zeros((block_frames, channels), dtype=np.float32)
        self._in_ptr = self._in.ctypes.data
        self._out = ctypes.create_string_buffer(lo.MAX_PACKET_BYTES)
        self._out_ptr = ctypes.addressof(self._out)
        self._settings = dataclasses.replace(settings)
        self.configure(settings)

    def encode(self, block: np.ndarray) -> bytes:
        """One block in, one Opus packet out (at most 4000 bytes)."""
        if block.shape != self._in.shape:
            raise CodecError(f"block shape {block.shape}, expected {self._in.shape}")
        if not self._state:
            raise CodecError("Opus encoder used after close()")
        np.copyto(self._in, block)
        n = self._lib.encode_float(
            self._state, self._in_ptr, self.block_frames, self._out_ptr, lo.MAX_PACKET_BYTES
        )
        if n < 0:
            raise CodecError(f"opus_encode_float failed: {self._lib.strerror(n)}")
        return ctypes.string_at(self._out_ptr, n)

    def configure(self, settings: EncoderSettings) -> None:
        """Apply ``settings``, calling only the CTLs whose values changed."""
        _check_settings(settings)
        if settings.application != self._application:
            self._create(settings.application)
        for request, value in _ctl_values(settings).items():
            if self._applied.get(request) != value:
                self._set(request, value)
                self._applied[request] = value
        self._settings = dataclasses.replace(settings)

    def _create(self, application: str) -> None:
        state = self._lib.encoder_create(self.rate_hz, self.channels, APPLICATIONS[application])
        self.close()
        self._state = state
        self._application = application
        self._applied = {}  # a new state: every value must be set again

    def _set(self, request: int, value: int) -> None:
        self._lib.encoder_set(self._state, request, value)

    def _get(self, request: int) -> int:
        return self._lib.encoder_get(self._state, request)

    # --- read back from libopus (GET CTLs), for tests and statistics ------------------

    @property
    def settings(self) -> EncoderSettings:
        """A copy of the settings last applied."""
        return dataclasses.replace(self._settings)

    @property
    def bitrate_bps(self) -> int:
        return self._get(lo.OPUS_GET_BITRATE)

    @property
    def max_bandwidth(self) -> int:
        return self._get(lo.OPUS_GET_MAX_BANDWIDTH)

    @property
    def complexity(self) -> int:
        return self._get(lo.OPUS_GET_COMPLEXITY)

    @property
    def vbr(self) -> bool:
        return bool(self._get(lo.OPUS_GET_VBR))

    @property
    def dtx(self) -> bool:
        return bool(self._get(lo.OPUS_GET_DTX))

    @property
    def fec(self) -> bool:
        return bool(self._get(lo.OPUS_GET_INBAND_FEC))

    @property
    def loss_pct(self) -> int:
        return self._get(lo.OPUS_GET_PACKET_LOSS_PERC)

    @property
    def application(self) -> str:
        return _APPLICATION_NAMES[self._get(lo.OPUS_GET_APPLICATION)]

    @property
    def lookahead_frames(self) -> int:
        """Codec delay (encoder lookahead plus decoder delay) in frames at ``rate_hz``."""
        return self._get(lo.OPUS_GET_LOOKAHEAD)

    def close(self) -> None:
        """Free the libopus state now (also done when the encoder is collected)."""
        state, self._state = self._state, None
        if state:
            self._lib.encoder_destroy(state)

    def __del__(self) -> None:
        if getattr(self, "_state", None):
            self.close()


# --- LBRR detection (RFC 6716) --------------------------------------------------------
#
# TOC byte (3.1): config = toc >> 3; configs 0..11 are SILK-only (NB, MB, WB x 10, 20,
# 40, 60 ms), 12..15 hybrid (SWB, FB x 10, 20 ms), 16..31 CELT-only, which has no
# SILK layer and so never LBRR. Bit 2 is the stereo flag.
#
# In SILK and hybrid frames, the range-coded data (4.1) opens with the SILK header
# bits (4.2.3): for the mid channel one VAD flag per SILK frame (one 20 ms SILK frame
# per 10 or 20 ms Opus frame, two per 40 ms, three per 60 ms), then its LBRR flag;
# for stereo the side channel's VAD flags and LBRR flag follow. Each header bit has
# probability 1/2. A fresh range decoder has rng = 2^31 after normalisation and val
# = the complement of the first 31 bits of the frame, so decoding a bit of
# probability 1/2 just reads the next bit of the frame, most significant first (and
# halves rng, keeping it a power of two): the header bits are the leading bits of the
# frame's first byte. The LBRR frames themselves (4.2.4) follow the header; we only
# need the flags. A zero-length frame (DTX or a lost frame) carries nothing.


def _silk_frames_per_opus_frame(config: int) -> int:
    frame_ms = (10, 20, 40, 60)[config % 4] if config < 12 else (10, 20)[config % 2]
    return max(1, frame_ms // 20)


def lbrr_flag(toc: int, first_byte: int) -> bool:
    """The LBRR flag(s) of a SILK or hybrid frame whose first data byte is ``first_byte``."""
    config = toc >> 3
    if config >= 16:
        return False  # CELT-only
    silk_frames = _silk_frames_per_opus_frame(config)
    flags = (first_byte >> (7 - silk_frames)) & 1  # mid: VAD x n, then LBRR
    if toc & 0x04:  # stereo: side VAD x n, then LBRR
        flags |= (first_byte >> (6 - 2 * silk_frames)) & 1
    return bool(flags)


class _PacketParser:
    """opus_packet_parse with preallocated outputs: the first frame's offset and size."""

    def __init__(self, lib: lo.Libopus) -> None:
        self._parse = lib.packet_parse
        self._toc = ctypes.c_ubyte(0)
        self._frames = (ctypes.c_void_p * lo.MAX_FRAMES_PER_PACKET)()
        self._sizes = (ctypes.c_int16 * lo.MAX_FRAMES_PER_PACKET)()
        self._offset = ctypes.c_int(0)
        self._toc_ref = ctypes.byref(self._toc)
        self._offset_ref = ctypes.byref(self._offset)

    def first_frame(self, packet: bytes) -> tuple[int, int] | None:
        """(offset, size) of the packet's first frame, or None if it does not parse."""
        if not packet:
            return None
        n = self._parse(
            packet, len(packet), self._toc_ref, self._frames, self._sizes, self._offset_ref
        )
        if n <= 0:
            return None
        return self._offset.value, self._sizes[0]


def carries_lbrr(packet: bytes, parser: _PacketParser | None = None) -> bool:
    """Whether ``packet`` holds an LBRR (in-band FEC) copy of the block before it."""
    if not packet or packet[0] >> 3 >= 16:
        return False
    parser = parser if parser is not None else _PacketParser(_library())
    first = parser.first_frame(packet)
    if first is None or first[1] == 0:
        return False
    return lbrr_flag(packet[0], packet[first[0]])


class OpusDecoder:
    """Decodes Opus packets of exactly one block to float32 (block_frames, channels).

    Decodes packets of either channel count (libopus mixes or duplicates). The
    returned array is reused by the next call: copy it to keep it. One thread at a
    time (the playout thread).
    """

    def __init__(self, rate_hz: int, channels: int, block_frames: int) -> None:
        reason = check(rate_hz, channels, block_frames)
        if reason:
            raise CodecError(reason)
        self._lib = _library()
        self.rate_hz = rate_hz
        self.channels = channels
        self.block_frames = block_frames
        self._state: int | None = self._lib.decoder_create(rate_hz, channels)
        self._out = np.zeros((block_frames, channels), dtype=np.float32)
        self._out_ptr = self._out.ctypes.data
        self._parser = _PacketParser(self._lib)
        # libopus 1.3.1 answers an FEC request with its PLC when the last packet it
        # decoded was CELT-only (its state has no SILK history to continue), LBRR or
        # not; track that mode so recover() can say None instead. PLC leaves it as is.
        self._last_celt_only = False

    def _check_duration(self, payload: bytes) -> None:
        if not self._state:
            raise CodecError("Opus decoder used after close()")
        if not payload:
            raise CodecError("empty Opus payload")
        n = self._lib.nb_samples(payload, self.rate_hz)
        if n < 0:
            raise CodecError(f"corrupt Opus payload: {self._lib.strerror(n)}")
        if n != self.block_frames:
            raise CodecError(
                f"Opus payload of {n} frames ({n * 1000 / self.rate_hz:g} ms), "
                f"expected one block of {self.block_frames}"
            )

    def decode(self, payload: bytes) -> np.ndarray:
        """Decode one packet; CodecError if it is corrupt or not exactly one block long."""
        if not isinstance(payload, bytes):
            payload = bytes(payload)
        self._check_duration(payload)
        n = self._lib.decode_float(
            self._state, payload, len(payload), self._out_ptr, self.block_frames, 0
        )
        if n != self.block_frames:
            why = self._lib.strerror(n) if n < 0 else f"{n} frames"
            raise CodecError(f"undecodable Opus payload: {why}")
        self._last_celt_only = payload[0] >> 3 >= 16
        return self._out

    def conceal(self) -> np.ndarray:
        """A block for a missing packet, from libopus's packet-loss concealment."""
        if not self._state:
            self._out.fill(0.0)
            return self._out
        n = self._lib.decode_float(self._state, None, 0, self._out_ptr, self.block_frames, 0)
        if n != self.block_frames:  # cannot happen for a 2.5 ms multiple; never raise here
            self._out.fill(0.0)
        return self._out

    def recover(self, next_payload: bytes) -> np.ndarray | None:
        """The missing block rebuilt from the LBRR data in the packet after it, or None.

        None when that packet carries no LBRR (FEC off, CELT-only, silence...), is
        corrupt or not one block long, or when the last decoded packet was CELT-only.
        The caller still decodes ``next_payload`` normally at its own slot.
        """
        if not isinstance(next_payload, bytes):
            next_payload = bytes(next_payload)
        if not self._state or self._last_celt_only or not carries_lbrr(next_payload, self._parser):
            return None
        if self._lib.nb_samples(next_payload, self.rate_hz) != self.block_frames:
            return None
        n = self._lib.decode_float(
            self._state, next_payload, len(next_payload), self._out_ptr, self.block_frames, 1
        )
        if n != self.block_frames:
            return None
        return self._out

    def close(self) -> None:
        """Free the libopus state now (also done when the decoder is collected)."""
        state, self._state = self._state, None
        if state:
            self._lib.decoder_destroy(state)

    def __del__(self) -> None:
        if getattr(self, "_state", None):
            self.close()
