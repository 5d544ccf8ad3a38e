"""Packet-loss concealment for raw PCM blocks: mirrored repetition with a fade.

When a block is missing, the last good block is played again, alternately
time-reversed and forward, so each repetition starts on the very sample the
previous output ended with (no click at the seam). The gain falls linearly to
zero over ``fade_ms``; a longer gap is silence, so a long loss never replays old
audio. The first good block after a gap is cross-faded in over ``xfade_ms``.
"""

from __future__ import annotations

import numpy as np


class Concealer:
    def __init__(
        self,
        block_frames: int,
        channels: int,
        rate_hz: int,
        fade_ms: float = 20.0,
        xfade_ms: float = 1.0,
    ) -> None:
        self._last = np.zeros((block_frames, channels), dtype=np.float32)
        self._have_last = False
        self._run = 0  # concealed blocks in a row
        self._fade_frames = max(1, round(fade_ms * rate_hz / 1000.0))
        self._xfade = min(block_frames, max(1, round(xfade_ms * rate_hz / 1000.0)))
        self._ramp_up = (np.arange(self._xfade, dtype=np.float32) / self._xfade)[:, None]
        frames = np.arange(block_frames, dtype=np.float32)[:, None]
        self._frames = frames
        self._out = np.zeros_like(self._last)
        self._block_frames = block_frames

    def good(self, block: np.ndarray, out: np.ndarray) -> None:
        """Play a received block into ``out``, fading in after a concealed stretch."""
        if self._run:
            self._synth(self._out)
            out[:] = block
            ramp = self._ramp_up
            out[: self._xfade] = block[: self._xfade] * ramp + self._out[: self._xfade] * (1 - ramp)
        else:
            out[:] = block
        self._last[:] = block
        self._have_last = True
        self._run = 0

    def conceal(self, out: np.ndarray) -> None:
        """Write a concealment block into ``out``."""
        self._synth(out)
        self._run += 1

    def _synth(self, out: np.ndarray) -> None:
        if not self._have_last:
            out.fill(0.0)
            return
        start = self._run * self._block_frames
        if start >= self._fade_frames:
            out.fill(0.0)
            return
        src = self._last[::-1] if self._run % 2 == 0 else self._last
        gain = np.clip(1.0 - (start + self._frames) / self._fade_frames, 0.0, 1.0)
        np.multiply(src, gain, out=out)
