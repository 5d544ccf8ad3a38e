"""Codec registry: the codecs rtai can negotiate, by name.

Each codec has a name (what the handshake and ``--codec`` say), an RTP payload
type (dynamic range 96..127), an RTP clock rate, and factories for its encoder
and decoder.

* Encoders take float32 blocks shaped (frames, channels) and return payload
  bytes. ``configure`` applies :class:`EncoderSettings` (bitrate, FEC, the
  packet-loss hint...) at any time between blocks; codecs ignore what they lack.
* Decoders own the whole playout side of a codec, concealment included:
  ``decode`` a received payload (raising :class:`CodecError` on one they cannot
  decode, which the receiver counts and conceals), ``conceal`` a missing block,
  or ``recover`` a missing block from the payload of the packet after it (in-band
  FEC) when the codec can, else return None. A returned block may be reused by the
  decoder's next call: copy it to keep it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np


class CodecError(ValueError):
    """A payload that cannot be decoded, or an impossible codec configuration."""


@dataclass
class EncoderSettings:
    """What the user and the path adaptation may change in a running encoder."""

    bitrate_bps: int = 48000
    fec: bool = False
    loss_pct: int = 0
    dtx: bool = False
    complexity: int = 9
    vbr: bool = True
    application: str = "voip"  # voip | audio | lowdelay
    max_bandwidth: str = "fb"  # nb | mb | wb | swb | fb: the widest audio band coded


class Encoder(Protocol):
    """``lookahead_frames``: how far the decoded audio lags the input (codec delay)."""

    lookahead_frames: int

    def encode(self, block: np.ndarray) -> bytes: ...

    def configure(self, settings: EncoderSettings) -> None: ...


class Decoder(Protocol):
    def decode(self, payload: bytes) -> np.ndarray: ...

    def conceal(self) -> np.ndarray: ...

    def recover(self, next_payload: bytes) -> np.ndarray | None: ...


@dataclass(frozen=True)
class CodecInfo:
    name: str
    payload_type: int
    make_encoder: Callable[[int, int, int, EncoderSettings], Encoder]
    make_decoder: Callable[[int, int, int], Decoder]  # (rate_hz, channels, block_frames)
    clock_rate: Callable[[int], int]  # RTP timestamp rate for a sample rate
    check: Callable[[int, int, int], str | None]  # why (rate, channels, block) won't do
    has_fec: bool = False
    version: int = 1  # of the payload format; peers on different versions do not use it

    @property
    def wire_name(self) -> str:
        """The name offered in the handshake: ``name/version`` from version 2 on, so
        that two rtai builds whose payloads differ do not pick this codec (an older
        peer offering plain ``lossless`` finds no match and the next codec is used)."""
        return self.name if self.version == 1 else f"{self.name}/{self.version}"

    def timestamp_step(self, rate_hz: int, block_frames: int) -> int:
        """RTP timestamp units one block spans."""
        return block_frames * self.clock_rate(rate_hz) // rate_hz


_REGISTRY: dict[str, CodecInfo] = {}


def register(info: CodecInfo) -> None:
    _REGISTRY[info.name] = info


def get_codec(name: str) -> CodecInfo:
    """The codec called ``name``, or whose handshake name (:attr:`CodecInfo.wire_name`)
    that is."""
    info = _REGISTRY.get(name) or next((c for c in _REGISTRY.values() if c.wire_name == name), None)
    if info is None:
        raise CodecError(f"unknown codec {name!r}; available: {', '.join(sorted(_REGISTRY))}")
    return info


def codec_names() -> list[str]:
    return sorted(_REGISTRY)


def _register_builtin() -> None:
    # opus binds libopus only when an encoder or decoder is made, so the registry
    # (and the CLI's --codec choices) stay whole where libopus is missing.
    from rtai.codecs import opus, pcm

    register(
        CodecInfo(
            name="pcm",
            payload_type=pcm.L16_PAYLOAD_TYPE,
            make_encoder=pcm.L16Encoder,
            make_decoder=pcm.L16Decoder,
            clock_rate=lambda rate_hz: rate_hz,
            check=lambda rate_hz, channels, block_frames: None,
        )
    )
    register(
        CodecInfo(
            name="opus",
            payload_type=opus.OPUS_PAYLOAD_TYPE,
            make_encoder=opus.OpusEncoder,
            make_decoder=opus.OpusDecoder,
            clock_rate=opus.clock_rate,
            check=opus.check,
            has_fec=True,
        )
    )
    from rtai.codecs import lossless

    register(
        CodecInfo(
            name="lossless",
            payload_type=lossless.LOSSLESS_PAYLOAD_TYPE,
            make_encoder=lossless.LosslessEncoder,
            make_decoder=lossless.LosslessDecoder,
            clock_rate=lambda rate_hz: rate_hz,
            check=lossless.check,
            version=lossless.VERSION,
        )
    )
    from rtai.codecs import perceptual

    register(
        CodecInfo(
            name="perceptual",
            payload_type=perceptual.PERCEPTUAL_PAYLOAD_TYPE,
            make_encoder=perceptual.PerceptualEncoder,
            make_decoder=perceptual.PerceptualDecoder,
            clock_rate=lambda rate_hz: rate_hz,
            check=perceptual.check,
            version=perceptual.VERSION,
        )
    )


_register_builtin()
