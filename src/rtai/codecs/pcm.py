"""L16: 16-bit signed big-endian linear PCM, channels interleaved (RFC 3551 4.5.11).

rtai sends it with a dynamic payload type at any rate; the payload of one packet
is exactly one block of ``frames * channels`` samples.
"""

from __future__ import annotations

import numpy as np

from rtai.codecs import CodecError, EncoderSettings
from rtai.codecs.standalone import StandaloneDecoder

L16_PAYLOAD_TYPE = 96
_SCALE = 32768.0
_BE_I16 = np.dtype(">i2")


class L16Encoder:
    lookahead_frames = 0  # PCM adds no delay

    def __init__(
        self,
        rate_hz: int,
        channels: int,
        block_frames: int,
        settings: EncoderSettings | None = None,
    ) -> None:
        self.channels = channels
        self.block_frames = block_frames
        self._scaled = np.empty((block_frames, channels), dtype=np.float32)
        self._ints = np.empty((block_frames, channels), dtype=_BE_I16)

    def encode(self, block: np.ndarray) -> bytes:
        if block.shape != self._scaled.shape:
            raise CodecError(f"block shape {block.shape}, expected {self._scaled.shape}")
        np.multiply(block, _SCALE, out=self._scaled)
        np.rint(self._scaled, out=self._scaled)
        np.clip(self._scaled, -32768, 32767, out=self._scaled)
        self._ints[...] = self._scaled
        return self._ints.tobytes()

    def configure(self, settings: EncoderSettings) -> None:
        """PCM has nothing to tune."""


class L16Decoder(StandaloneDecoder):
    """Decodes L16 and conceals missing blocks (see :mod:`rtai.dsp.conceal`)."""

    def __init__(self, rate_hz: int, channels: int, block_frames: int) -> None:
        super().__init__(rate_hz, channels, block_frames)
        self._bytes = block_frames * channels * 2

    def _decode_block(self, payload: bytes) -> np.ndarray:
        if len(payload) != self._bytes:
            raise CodecError(f"L16 payload of {len(payload)} bytes, expected {self._bytes}")
        ints = np.frombuffer(payload, dtype=_BE_I16).reshape(self.block_frames, self.channels)
        return ints.astype(np.float32) / np.float32(_SCALE)
