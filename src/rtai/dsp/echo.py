"""The echo canceller's reference: what the speaker played, aligned with the microphone.

Pure (sans-I/O). Two pieces, both driven by times and blocks the caller hands in:

* :class:`EchoReference` keeps the last couple of seconds of the blocks handed to the
  output callback, each with the time its first frame leaves the speaker (PortAudio's
  ``outputBufferDacTime`` mapped to ``time.monotonic()``). For a captured block whose
  first frame reached the microphone at ``adc_s`` it returns the samples the speaker
  played from ``adc_s + lead_s`` on. A real echo is the speaker's sound arriving later
  (the acoustic path, 1 to a few hundred ms), so the returned reference always leads
  the echo by that path plus ``lead_s``: the canceller only has to find a causal delay.
  ``lead_s`` absorbs errors in the reported device times; it is capped at the
  callback's own output-to-input distance (``dac_s - adc_s``), so the reference a
  captured block needs has always been handed to the output callback by the time that
  block's own callback returns.

  The offset between the capture and playout sample counters is measured once and then
  held: the times reported per callback jitter by a few samples, and a reference that
  shifts by one sample now and then would undo a converged filter. It is measured again
  (``realigned`` counts it) only when the reported times move away by more than
  ``tolerance_s``: an xrun, a restarted stream, two devices whose clocks drift.

  The audio thread calls :meth:`EchoReference.played`; the sender thread calls
  :meth:`EchoReference.reference` for blocks at least one period old, so the two never
  touch the same part of the ring.

* :class:`Reframer` turns blocks of any size into the fixed 10 ms frames an echo
  canceller works on and back, with a constant delay (0 when the block is a multiple
  of the frame, ``frame - gcd(block, frame)`` frames otherwise).
"""

from __future__ import annotations

import math

import numpy as np

DEFAULT_LEAD_S = 0.004
DEFAULT_TOLERANCE_S = 0.004


class EchoReference:
    """A ring of played audio with its playout times; one writer and one reader thread."""

    def __init__(
        self,
        rate_hz: int,
        channels: int,
        seconds: float = 2.0,
        lead_s: float = DEFAULT_LEAD_S,
        tolerance_s: float = DEFAULT_TOLERANCE_S,
    ) -> None:
        self.rate_hz = rate_hz
        self.channels = channels
        self.lead_frames = round(lead_s * rate_hz)
        self.tolerance_frames = max(1, round(tolerance_s * rate_hz))
        self._ring = np.zeros((max(1, round(seconds * rate_hz)), channels), dtype=np.float32)
        self._written = 0  # frames ever written
        # (frame counter at the start of the newest played block, its DAC time, the
        # same callback's DAC minus ADC time): one tuple, replaced whole, so the reader
        # never sees a half-updated set.
        self._anchor: tuple[int, float, float] | None = None
        self.offset_frames: int | None = None  # played counter minus capture counter
        self.realigned = 0
        self.missing_frames = 0  # reference asked for but not (or no longer) in the ring

    # -- audio thread --------------------------------------------------------------------

    def played(self, block: np.ndarray, dac_s: float, adc_s: float | None = None) -> None:
        """Record the block handed to the output callback; ``dac_s`` is when its first
        frame leaves the speaker, ``adc_s`` when the same callback's input block was
        captured. ``block`` is (frames, channels) float32."""
        n = len(block)
        size = len(self._ring)
        start = self._written % size
        first = min(n, size - start)
        self._ring[start : start + first] = block[:first]
        if first < n:
            self._ring[: n - first] = block[first:]
        self._anchor = (self._written, dac_s, dac_s - (dac_s if adc_s is None else adc_s))
        self._written += n

    # -- sender thread -------------------------------------------------------------------

    def position(self, capture_frame: int, adc_s: float) -> int | None:
        """The played-frame counter whose sound left the speaker ``lead`` before the
        captured frame ``capture_frame`` (captured at ``adc_s``) was recorded: held
        fixed while the reported times agree with it within the tolerance."""
        anchor = self._anchor
        if anchor is None:
            return None
        played_at, dac_s, out_minus_in_s = anchor
        lead = min(self.lead_frames, max(0, round(out_minus_in_s * self.rate_hz)))
        raw = played_at + (adc_s - dac_s) * self.rate_hz + lead - capture_frame
        if self.offset_frames is None or abs(raw - self.offset_frames) > self.tolerance_frames:
            if self.offset_frames is not None:
                self.realigned += 1
            self.offset_frames = round(raw)
        return capture_frame + self.offset_frames

    def reference(self, capture_frame: int, adc_s: float, frames: int) -> np.ndarray:
        """The played audio aligned with ``frames`` captured frames starting at the
        capture counter ``capture_frame`` (first frame captured at ``adc_s``): a new
        (frames, channels) array, zeros where nothing was played or it is too old."""
        out = np.zeros((frames, self.channels), dtype=np.float32)
        start = self.position(capture_frame, adc_s)
        if start is None:
            self.missing_frames += frames
            return out
        size = len(self._ring)
        written = self._written
        lo = max(start, written - size + 1, 0)  # keep one frame clear of the writer
        hi = min(start + frames, written)
        if hi <= lo:
            self.missing_frames += frames
            return out
        self.missing_frames += frames - (hi - lo)
        a = lo % size
        n = hi - lo
        first = min(n, size - a)
        out[lo - start : lo - start + first] = self._ring[a : a + first]
        if first < n:
            out[lo - start + first : hi - start] = self._ring[: n - first]
        return out


class Reframer:
    """Blocks of ``block_frames`` in, ``frame_frames`` frames through ``process``, blocks out.

    ``push`` takes one block of capture and its reference; ``pull`` gives one block of
    processed audio exactly ``delay_frames`` later. Preallocated: no growth in steady state.
    """

    def __init__(self, block_frames: int, frame_frames: int, channels: int) -> None:
        self.block_frames = block_frames
        self.frame_frames = frame_frames
        self.channels = channels
        if block_frames % frame_frames == 0:
            self.delay_frames = 0
        else:
            self.delay_frames = frame_frames - math.gcd(block_frames, frame_frames)
        cap = block_frames + frame_frames
        self._near = np.zeros((cap, channels), dtype=np.float32)
        self._far = np.zeros((cap, channels), dtype=np.float32)
        self._n_in = 0
        out_cap = block_frames + frame_frames + self.delay_frames
        self._out = np.zeros((out_cap, channels), dtype=np.float32)
        self._n_out = self.delay_frames  # starts with the delay's worth of silence

    def push(self, near: np.ndarray, far: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
        """Add one block; return the complete frames (near, far views) now ready."""
        n = len(near)
        self._near[self._n_in : self._n_in + n] = near
        self._far[self._n_in : self._n_in + n] = far
        self._n_in += n
        frames = []
        f = self.frame_frames
        done = 0
        while self._n_in - done >= f:
            frames.append((self._near[done : done + f].copy(), self._far[done : done + f].copy()))
            done += f
        if done:
            rest = self._n_in - done
            self._near[:rest] = self._near[done : self._n_in]
            self._far[:rest] = self._far[done : self._n_in]
            self._n_in = rest
        return frames

    def put(self, frame: np.ndarray) -> None:
        """Hand back one processed frame, in order."""
        f = len(frame)
        self._out[self._n_out : self._n_out + f] = frame
        self._n_out += f

    def pull(self) -> np.ndarray:
        """One processed block (a new array)."""
        n = self.block_frames
        if self._n_out < n:  # cannot happen when every pushed frame was put back
            raise RuntimeError("reframer: processed audio missing")
        block = self._out[:n].copy()
        rest = self._n_out - n
        self._out[:rest] = self._out[n : self._n_out]
        self._n_out = rest
        return block
