"""Simulated rooms for echo tests and benchmarks: loudspeaker to microphone.

A room is a synthetic impulse response (a pure delay, then an exponentially decaying
noise tail whose level falls 60 dB in ``rt60_s``, the way measured rooms look) and a
loudspeaker that soft-clips (``tanh``) when driven hard. :class:`RoomPath` runs the
path block by block with its state, so a JACK process callback can close the
acoustic loop of a "sound card"; :func:`echo_of` runs it on a whole signal.
"""

from __future__ import annotations

import numpy as np


def synthetic_rir(
    rate_hz: int,
    rt60_s: float,
    delay_s: float,
    gain_db: float = -6.0,
    drr_db: float = 10.0,
    seed: int = 0,
) -> np.ndarray:
    """``delay_s`` of silence, then the direct sound and a decaying noise tail (length
    ``1.1 * rt60_s``, -60 dB at ``rt60_s``) whose energy is ``drr_db`` below the direct
    sound's (a laptop's loudspeaker a few cm from its microphone: +10 dB or more); the
    whole path's energy gain is ``gain_db`` (the echo return loss, negated)."""
    if rt60_s <= 0 or delay_s < 0:
        raise ValueError("rt60_s must be positive and delay_s not negative")
    rng = np.random.default_rng(seed)
    n = max(2, round(1.1 * rt60_s * rate_hz))
    t = np.arange(n) / rate_hz
    tail = rng.standard_normal(n) * np.exp(-3.0 * np.log(10.0) * t / rt60_s)
    tail[0] = 0.0
    tail *= 10 ** (-drr_db / 20) / np.sqrt(np.sum(tail**2))
    tail[0] = 1.0  # the direct sound
    tail *= 10 ** (gain_db / 20) / np.sqrt(np.sum(tail**2))
    return np.concatenate([np.zeros(round(delay_s * rate_hz)), tail]).astype(np.float64)


def soft_clip(x: np.ndarray, drive: float = 2.0) -> np.ndarray:
    """A loudspeaker's compression: ``tanh(drive * x) / drive`` (1:1 for small signals)."""
    return np.tanh(drive * np.asarray(x, dtype=np.float64)) / drive


def echo_of(played: np.ndarray, rir: np.ndarray, drive: float = 2.0) -> np.ndarray:
    """What a microphone hears of ``played`` (mono) through the speaker and the room."""
    from scipy.signal import fftconvolve

    return fftconvolve(soft_clip(played, drive), rir)[: len(played)]


class RoomPath:
    """The speaker-to-microphone path, one block at a time, with its state (FFT
    overlap-add). ``process`` takes blocks of exactly ``block_frames``."""

    def __init__(self, rir: np.ndarray, block_frames: int, drive: float = 2.0) -> None:
        self.block_frames = n = block_frames
        self.drive = drive
        taps = len(rir)
        size = 1
        while size < n + taps - 1:
            size *= 2
        self._size = size
        self._h = np.fft.rfft(rir, size)
        self._tail = np.zeros(size)
        self._out = np.zeros(n, dtype=np.float32)

    def process(self, block: np.ndarray) -> np.ndarray:
        """The echo the microphone hears during this block (float32, valid until the
        next call)."""
        n = self.block_frames
        y = np.fft.irfft(np.fft.rfft(soft_clip(block, self.drive), self._size) * self._h)
        y[: self._size - n] += self._tail[n:]
        self._tail[: self._size] = y
        self._out[:] = y[:n]
        return self._out


def run_capture(
    pipeline,
    mic: np.ndarray,
    speaker: np.ndarray,
    out_latency_frames: int,
    t0_s: float = 100.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Drive a :class:`~rtai.processing.CapturePipeline` the way the session does, on a
    simulated duplex sound card: callback ``k`` captures ``mic`` block ``k`` (ADC time
    ``t0 + k n / rate``) and hands over the ``speaker`` block that starts playing
    ``out_latency_frames`` later. ``speaker[j]`` leaves the speaker at ``t0 + j / rate``
    (so ``mic`` should hold its echo at the same indices). Mono in.

    Returns (processed output, one flag per block: sent), the output delayed by the
    pipeline's constant delay like the live path.
    """
    n, rate = pipeline.block_frames, pipeline.rate_hz
    blocks = len(mic) // n
    out = np.zeros(blocks * n, dtype=np.float32)
    sent = np.zeros(blocks, dtype=bool)
    padded = np.concatenate([speaker, np.zeros(out_latency_frames + n)]).astype(np.float32)
    for k in range(blocks):
        adc = t0_s + k * n / rate
        s = k * n + out_latency_frames
        pipeline.played(padded[s : s + n, None], adc + out_latency_frames / rate, adc)
        res = pipeline.process(mic[k * n : (k + 1) * n, None].astype(np.float32), k, adc)
        out[k * n : (k + 1) * n] = res.block[:, 0]
        sent[k] = res.send
    return out, sent


def echo_rig_card(server: str, name: str, rir: np.ndarray, drive: float = 2.0, **kwargs):
    """A :class:`~rtai.testing.jack_rig.RigCard` whose microphone also hears its own
    speaker through the room ``rir`` (mono): the acoustic loop of a laptop, closed in
    the JACK process callback. The speaker samples of one cycle reach the microphone in
    the next (JACK's feedback order), one period on top of the room's delay."""
    from rtai.testing.jack_rig import RigCard

    class EchoRigCard(RigCard):
        def __init__(self) -> None:
            self.room: RoomPath | None = None
            super().__init__(server, name, **kwargs)

        def _process(self, frames: int) -> None:
            super()._process(frames)
            if self.room is None or self.room.block_frames != frames:
                self.room = RoomPath(rir, frames, drive)
            echo = self.room.process(self.spks[0].get_array())
            for port in self.mics:
                port.get_array()[:] += echo

    return EchoRigCard()
