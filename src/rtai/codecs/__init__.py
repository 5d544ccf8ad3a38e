"""Codec registry: the codecs rtai can negotiate, by name.

Each codec has a name (what the handshake and ``--codec`` say), an RTP payload
type (dynamic range 96..127 unless the codec has a static one) and a factory for
its encoder and decoder. Encoders take float32 blocks shaped (frames, channels)
and return payload bytes; decoders do the reverse and raise :class:`CodecError`
on a payload they cannot decode, which the receiver counts and conceals.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np


class CodecError(ValueError):
    """A payload that cannot be decoded, or an impossible codec configuration."""


class Encoder(Protocol):
    def encode(self, block: np.ndarray) -> bytes: ...


class Decoder(Protocol):
    def decode(self, payload: bytes) -> np.ndarray: ...


@dataclass(frozen=True)
class CodecInfo:
    name: str
    payload_type: int
    make_encoder: Callable[[int, int, int], Encoder]  # (rate_hz, channels, block_frames)
    make_decoder: Callable[[int, int, int], Decoder]


_REGISTRY: dict[str, CodecInfo] = {}


def register(info: CodecInfo) -> None:
    _REGISTRY[info.name] = info


def get_codec(name: str) -> CodecInfo:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise CodecError(
            f"unknown codec {name!r}; available: {', '.join(sorted(_REGISTRY))}"
        ) from None


def codec_names() -> list[str]:
    return sorted(_REGISTRY)


def _register_builtin() -> None:
    from rtai.codecs import pcm

    register(
        CodecInfo(
            name="pcm",
            payload_type=pcm.L16_PAYLOAD_TYPE,
            make_encoder=pcm.L16Encoder,
            make_decoder=pcm.L16Decoder,
        )
    )


_register_builtin()
