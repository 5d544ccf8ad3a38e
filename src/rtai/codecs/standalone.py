"""The decoder shape of every codec whose packets stand alone (L16, lossless, perceptual,
JackTrip's samples): decode a payload into a block, conceal a missing block from the
blocks before it (:class:`rtai.dsp.conceal.Concealer`), and no forward error
correction to recover a lost block from the next packet."""

from __future__ import annotations

import numpy as np

from rtai.dsp.conceal import Concealer


class StandaloneDecoder:
    """Subclasses implement :meth:`_decode_block`: payload bytes to a float32 block of
    ``(block_frames, channels)``, raising :class:`rtai.codecs.CodecError` on a bad one."""

    def __init__(self, rate_hz: int, channels: int, block_frames: int) -> None:
        self.rate_hz = rate_hz
        self.channels = channels
        self.block_frames = block_frames
        self._concealer = Concealer(block_frames, channels, rate_hz)
        self._out = np.zeros((block_frames, channels), dtype=np.float32)

    def _decode_block(self, payload: bytes) -> np.ndarray:
        raise NotImplementedError

    def decode(self, payload: bytes) -> np.ndarray:
        """The block the payload carries (a view the next call overwrites)."""
        self._concealer.good(self._decode_block(payload), self._out)
        return self._out

    def conceal(self) -> np.ndarray:
        """A block to play in place of a missing one."""
        self._concealer.conceal(self._out)
        return self._out

    def recover(self, next_payload: bytes) -> np.ndarray | None:
        """Packets stand alone: a lost block cannot be rebuilt from the next one."""
        return None
