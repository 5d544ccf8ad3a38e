"""Capture processing: echo cancellation, noise suppression, gain control, voice gate.

Runs on the sender thread, between the capture ring and the encoder (the audio
callback only copies blocks in and out). For each captured block:

1. :class:`~rtai.dsp.echo.EchoReference` gives what the speaker played at the time
   the block was captured (the exact blocks handed to the output callback, placed by
   their DAC times against the block's ADC time);
2. :class:`~rtai.dsp.echo.Reframer` cuts capture and reference into 10 ms frames;
3. the engine processes each frame: WebRTC's audio processing module through
   ``pywebrtc-audio`` (AEC3, noise suppression, AGC2, speech probability) when it is
   installed, else :class:`NumpyEngine`, a frequency-domain adaptive echo canceller
   with an energy voice detector (no noise suppression or gain control);
4. :class:`VoiceGate` decides, from the speech probability and the level, whether
   the block is speech (sent) or silence (not sent: voice-activity DTX), with a fast
   energy onset so the first syllable is not clipped and a hangover so word endings
   are not;
5. :class:`TalkControl` (mute, push-to-talk) may hold the block back as well.

Pure except for the engine (native code, no I/O): the session hands in blocks,
counters and times, and gets back the block, its capture time and whether to send it.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from rtai.dsp.echo import EchoReference, Reframer

try:  # the field-proven engine; optional at run time
    import pywebrtc_audio as _webrtc
except ImportError:  # pragma: no cover - depends on the environment
    _webrtc = None

NS_LEVEL = 2  # WebRTC noise suppression: 0..3 = 6, 12, 18, 21 dB
HANGOVER_S = 0.3
SPEECH_PROBABILITY = 0.6
ONSET_OVER_FLOOR_DB = 12.0
QUIET_DBFS = -65.0  # never speech below this
ONSET_MIN_DBFS = -50.0  # an energy onset must also reach this
FLOOR_MIN_DBFS = -100.0  # digital silence does not pull the noise floor down


def webrtc_available() -> bool:
    return _webrtc is not None


@dataclass
class ProcessingOptions:
    """Which capture stages run. ``vad`` is voice-activity DTX (silence not sent)."""

    aec: bool = False
    ns: bool = False
    agc: bool = False
    vad: bool = False
    ptt: bool = False
    engine: str = "auto"  # auto | webrtc | numpy

    @property
    def any_dsp(self) -> bool:
        return self.aec or self.ns or self.agc or self.vad


class Engine(Protocol):
    name: str
    frame_frames: int
    speech_probability: float

    def process(self, near: np.ndarray, far: np.ndarray) -> np.ndarray:
        """One frame (frame_frames, channels) float32 in, the processed frame out."""


class WebRtcEngine:
    """WebRTC's audio processing module: HPF + AEC3 + NS + AGC2 in one pass."""

    name = "webrtc"

    def __init__(self, rate_hz: int, channels: int, opts: ProcessingOptions) -> None:
        if _webrtc is None:
            raise RuntimeError("pywebrtc-audio is not installed")
        self.frame_frames = rate_hz // 100
        self.channels = channels
        self.aec = opts.aec
        self._ap = _webrtc.AudioProcessor(
            sample_rate=rate_hz,
            num_channels=channels,
            echo_cancellation=opts.aec,
            noise_suppression=opts.ns,
            auto_gain_control=opts.agc,
            ns_level=NS_LEVEL,
        )
        self._agc = opts.agc
        self.speech_probability = 0.0

    @property
    def gain_db(self) -> float | None:
        return float(self._ap.gain_db) if self._agc else None

    def process(self, near: np.ndarray, far: np.ndarray) -> np.ndarray:
        flat_far = far.reshape(-1) if self.aec else None
        out = self._ap.process(near.reshape(-1), flat_far)
        self.speech_probability = float(self._ap.speech_probability)
        return out.reshape(-1, self.channels)


class NumpyEngine:
    """The fallback: rtai's own echo canceller in NumPy, and an energy speech detector.

    * A partitioned-block frequency-domain NLMS filter (overlap-save, 10 ms partitions,
      ``tail_s`` of echo path) takes the linear echo out.
    * A residual-echo suppressor takes out what a linear filter cannot (a loudspeaker
      driven into compression, the tail beyond the filter): per frequency bin, the
      residual is estimated as ``leak`` times the filter's own echo estimate, ``leak``
      being learned from how the error's power spectrum follows the estimate's; the bin
      is attenuated by a Wiener-like gain (floor ``floor_db``). It works on 20 ms
      sqrt-Hann windows with a 10 ms hop, so it delays the output by 10 ms.

    No noise suppression and no gain control (those need pywebrtc-audio).
    """

    name = "numpy"

    def __init__(
        self,
        rate_hz: int,
        channels: int,
        opts: ProcessingOptions,
        tail_s: float = 0.5,
        step: float = 0.5,
        floor_db: float = -40.0,
        oversub: float = 4.0,
        reg_rel: float = 0.01,
    ) -> None:
        self.frame_frames = f = rate_hz // 100
        self.channels = channels
        self.aec = opts.aec
        self.partitions = max(1, math.ceil(tail_s * rate_hz / f))
        self.step = step
        bins = f + 1
        self._w = np.zeros((channels, self.partitions, bins), dtype=np.complex128)
        self._x_hist = np.zeros((channels, self.partitions, bins), dtype=np.complex128)
        self._x_prev = np.zeros((channels, f))
        # residual-echo suppressor state
        self._win = np.sqrt(np.hanning(2 * f + 1)[: 2 * f])  # periodic: sums to 1 at 50 %
        self._e_prev = np.zeros((channels, f))
        self._y_prev = np.zeros((channels, f))
        self._ola = np.zeros((channels, f))
        self._ey = np.full((channels, bins), 1e-9)  # smoothed |E|^2 |Y|^2
        self._yy = np.full((channels, bins), 1e-9)  # smoothed |Y|^4
        self._gain = np.ones((channels, bins))
        self._floor = 10 ** (floor_db / 20)
        self.oversub = oversub
        self.reg_rel = reg_rel
        self._floor_db = -90.0
        self.speech_probability = 0.0

    def _cancel(self, c: int, near: np.ndarray, far: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        f = self.frame_frames
        x = np.concatenate([self._x_prev[c], far])
        self._x_prev[c] = far
        X = np.fft.rfft(x)
        hist = self._x_hist[c]
        hist[1:] = hist[:-1]
        hist[0] = X
        Y = np.sum(self._w[c] * hist, axis=0)
        y = np.fft.irfft(Y)[f:]
        e = near - y
        # Normalise by the far-end power in the whole tail the filter spans; the
        # regulariser keeps the step small while the far end is quiet (nothing to
        # learn, and double talk likely).
        norm = np.sum(hist.real**2 + hist.imag**2, axis=0)
        norm += self.reg_rel * float(np.mean(norm)) + 1e-6 * (2 * f)
        E = np.fft.rfft(np.concatenate([np.zeros(f), e]))
        G = self.step * E / norm
        grad = np.conj(hist) * G
        # Gradient constraint: keep each partition a causal length-f filter.
        g = np.fft.irfft(grad, axis=-1)
        g[:, f:] = 0.0
        self._w[c] += np.fft.rfft(g, axis=-1)
        return e, y

    def _suppress(self, c: int, e: np.ndarray, y: np.ndarray) -> np.ndarray:
        f = self.frame_frames
        win = self._win
        Ew = np.fft.rfft(win * np.concatenate([self._e_prev[c], e]))
        Yw = np.fft.rfft(win * np.concatenate([self._y_prev[c], y]))
        self._e_prev[c] = e
        self._y_prev[c] = y
        pe, py = np.abs(Ew) ** 2, np.abs(Yw) ** 2
        # How much of the estimated echo is left in the error: the regression of the
        # error's power on the estimate's, over all bins, smoothed over ~0.5 s.
        self._ey[c] = 0.95 * self._ey[c] + 0.05 * pe * py
        self._yy[c] = 0.95 * self._yy[c] + 0.05 * py * py
        leak = float(np.clip(np.sum(self._ey[c]) / np.sum(self._yy[c]), 0.005, 0.5))
        residual = self.oversub * leak * py
        gain = np.clip(1.0 - residual / (pe + 1e-12), self._floor, 1.0)
        # Release slowly (a decaying echo tail), attack at once.
        gain = np.minimum(gain, 0.6 * self._gain[c] + 0.4 * gain)
        self._gain[c] = gain
        out = win * np.fft.irfft(gain * Ew)
        frame = out[:f] + self._ola[c]
        self._ola[c] = out[f:]
        return frame

    def process(self, near: np.ndarray, far: np.ndarray) -> np.ndarray:
        near64 = near.astype(np.float64)
        if self.aec:
            out = np.empty_like(near64)
            for c in range(self.channels):
                e, y = self._cancel(c, near64[:, c], far[:, c].astype(np.float64))
                out[:, c] = self._suppress(c, e, y)
        else:
            out = near64
        level_db = 10 * math.log10(float(np.mean(out**2)) + 1e-12)
        # Energy speech probability against a floor that falls at once and rises slowly.
        self._floor_db = min(level_db, self._floor_db + 0.05)
        over = level_db - self._floor_db
        self.speech_probability = float(min(1.0, max(0.0, (over - 6.0) / 12.0)))
        return out.astype(np.float32)

    @property
    def gain_db(self) -> float | None:
        return None


class RtaiEngine:
    """rtai's own echo canceller (:class:`~rtai.dsp.aec.EchoCanceller`: two-path
    frequency-domain filter with a loudspeaker non-linearity model and a gentle
    residual-echo suppressor), then WebRTC's noise suppression and gain control
    (pywebrtc-audio's AudioProcessor with its AEC3 off) when that is installed."""

    name = "rtai"

    def __init__(
        self,
        rate_hz: int,
        channels: int,
        opts: ProcessingOptions,
        tail_s: float = 0.6,
        aec3_after: bool = False,
        **aec_kwargs,
    ) -> None:
        from rtai.dsp.aec import EchoCanceller

        self._aec3 = aec3_after
        self.frame_frames = f = rate_hz // 100
        self.channels = channels
        self.aec = opts.aec
        partitions = max(1, math.ceil(tail_s * rate_hz / f))
        self._cancellers = (
            [EchoCanceller(f, partitions, **aec_kwargs) for _ in range(channels)]
            if opts.aec
            else []
        )
        self._agc = opts.agc and _webrtc is not None
        self._ap = None
        if _webrtc is not None and (opts.ns or opts.agc or opts.vad or aec3_after):
            self._ap = _webrtc.AudioProcessor(
                sample_rate=rate_hz,
                num_channels=channels,
                echo_cancellation=aec3_after,
                noise_suppression=opts.ns,
                auto_gain_control=opts.agc,
                ns_level=NS_LEVEL,
            )
        self._floor_db = -90.0
        self.speech_probability = 0.0

    @property
    def gain_db(self) -> float | None:
        return float(self._ap.gain_db) if self._agc and self._ap is not None else None

    def process(self, near: np.ndarray, far: np.ndarray) -> np.ndarray:
        out = near.astype(np.float64)
        for c, canceller in enumerate(self._cancellers):
            out[:, c] = canceller.process(out[:, c], far[:, c].astype(np.float64))
        out32 = out.astype(np.float32)
        if self._ap is not None:
            ref = far.reshape(-1) if self._aec3 else None
            out32 = self._ap.process(out32.reshape(-1), ref).reshape(-1, self.channels)
            self.speech_probability = float(self._ap.speech_probability)
        else:
            level_db = 10 * math.log10(float(np.mean(out**2)) + 1e-12)
            self._floor_db = min(level_db, self._floor_db + 0.05)
            over = level_db - self._floor_db
            self.speech_probability = float(min(1.0, max(0.0, (over - 6.0) / 12.0)))
        return out32


def measure_delay_frames(engine: Engine, channels: int) -> int:
    """The engine's own delay (band-splitting filters, block framing, lookahead), found
    by passing a noise burst through ``engine`` (a fresh instance, thrown away after)
    and cross-correlating; 0 for an engine that does not delay."""
    from rtai.dsp.align import find_lag

    f = engine.frame_frames
    burst = np.zeros((60 * f, channels), dtype=np.float32)
    burst[20 * f : 40 * f] = np.random.default_rng(0).standard_normal((20 * f, channels)) * 0.1
    silent = np.zeros((f, channels), dtype=np.float32)
    out = np.concatenate([engine.process(burst[i : i + f], silent) for i in range(0, 60 * f, f)])
    return max(0, int(find_lag(burst[:, 0], out[:, 0])))


def make_engine(rate_hz: int, channels: int, opts: ProcessingOptions) -> Engine:
    """The WebRTC engine when available (or asked for), else the NumPy fallback."""
    if opts.engine == "rtai":
        return RtaiEngine(rate_hz, channels, opts)
    if opts.engine == "webrtc" or (opts.engine == "auto" and webrtc_available()):
        return WebRtcEngine(rate_hz, channels, opts)
    return NumpyEngine(rate_hz, channels, opts)


def fallback_warning(opts: ProcessingOptions) -> str | None:
    """One line to tell the user what the fallback engine cannot do, or None."""
    if webrtc_available() or not opts.any_dsp:
        return None
    lost = [n for n, on in (("noise suppression", opts.ns), ("gain control", opts.agc)) if on]
    tail = f"; {' and '.join(lost)} off" if lost else ""
    return (
        "pywebrtc-audio is not installed: using rtai's own NumPy echo canceller"
        f"{tail} (pip install pywebrtc-audio for WebRTC's AEC3, NS and AGC)"
    )


class VoiceGate:
    """Speech or silence per block, for voice-activity DTX.

    A block is speech when the engine's speech probability reaches ``threshold`` or its
    level jumps ``onset_db`` over the tracked noise floor and reaches ``onset_min_dbfs``
    (the probability lags a word's first few ms; the energy jump does not). Once speech,
    the gate stays open for ``hangover_s`` after the last speech block, so word endings
    and short gaps are sent.
    """

    def __init__(
        self,
        block_s: float,
        hangover_s: float = HANGOVER_S,
        threshold: float = SPEECH_PROBABILITY,
        onset_db: float = ONSET_OVER_FLOOR_DB,
        quiet_dbfs: float = QUIET_DBFS,
        onset_min_dbfs: float = ONSET_MIN_DBFS,
    ) -> None:
        self.block_s = block_s
        self.onset_min_dbfs = onset_min_dbfs
        self.hangover_blocks = max(1, round(hangover_s / block_s))
        self.threshold = threshold
        self.onset_db = onset_db
        self.quiet_dbfs = quiet_dbfs
        self.floor_dbfs = -70.0
        self._rise_db = 6.0 * block_s  # the floor climbs 6 dB a second at most
        self._left = 0
        self.speech = False

    def update(self, speech_probability: float, level_dbfs: float) -> bool:
        """Feed one block; True while the gate is open (send it)."""
        loud = level_dbfs > self.quiet_dbfs
        onset = level_dbfs >= max(self.floor_dbfs + self.onset_db, self.onset_min_dbfs)
        voiced = loud and (speech_probability >= self.threshold or onset)
        if level_dbfs < self.floor_dbfs:
            self.floor_dbfs = max(level_dbfs, FLOOR_MIN_DBFS)
        elif speech_probability < self.threshold:  # a louder background: follow it slowly
            self.floor_dbfs = min(level_dbfs, self.floor_dbfs + self._rise_db)
        if voiced:
            self._left = self.hangover_blocks
            self.speech = True
        else:
            self.speech = self._left > 0
            self._left = max(0, self._left - 1)
        return self.speech


class TalkControl:
    """Mute and push-to-talk, set by the face (keys), read by the sender thread."""

    def __init__(self, ptt: bool = False) -> None:
        self.ptt = ptt
        self.muted = False
        self.talking = False  # push-to-talk pressed (toggled)
        self._lock = threading.Lock()

    @property
    def open(self) -> bool:
        return not self.muted and (not self.ptt or self.talking)

    def toggle_mute(self) -> None:
        with self._lock:
            self.muted = not self.muted

    def toggle_talk(self) -> None:
        with self._lock:
            self.talking = not self.talking

    def state(self) -> str:
        if self.muted:
            return "muted"
        if self.ptt:
            return "talk" if self.talking else "ptt"
        return "open"


@dataclass
class CaptureCounters:
    blocks: int = 0
    sent: int = 0
    silent: int = 0  # held back by the voice gate
    held: int = 0  # held back by mute or push-to-talk
    reference_missing_frames: int = 0


@dataclass
class CaptureResult:
    block: np.ndarray
    capture_s: float
    send: bool
    reason: str = ""  # why not sent: "silence" or "muted"


def _level_dbfs(x: np.ndarray) -> float:
    flat = x.reshape(-1)
    return 10.0 * math.log10(float(np.dot(flat, flat)) / max(1, flat.size) + 1e-12)


class CapturePipeline:
    """One peer's capture processing; the session feeds it every captured block."""

    def __init__(
        self,
        rate_hz: int,
        channels: int,
        block_frames: int,
        opts: ProcessingOptions,
        talk: TalkControl | None = None,
        engine: Engine | None = None,
    ) -> None:
        self.rate_hz = rate_hz
        self.channels = channels
        self.block_frames = block_frames
        self.opts = opts
        self.talk = talk or TalkControl(opts.ptt)
        self.counters = CaptureCounters()
        self.reference = EchoReference(rate_hz, channels)
        self.engine: Engine | None = None
        self._reframer: Reframer | None = None
        self.engine_delay_frames = 0
        if opts.any_dsp:
            self.engine = engine or make_engine(rate_hz, channels, opts)
            if engine is None:
                probe = make_engine(rate_hz, channels, opts)
                self.engine_delay_frames = measure_delay_frames(probe, channels)
            self._reframer = Reframer(block_frames, self.engine.frame_frames, channels)
        self.gate = VoiceGate(block_frames / rate_hz) if opts.vad else None
        # What the output block lags the captured one by: re-framing plus the engine's
        # filters. The capture time sent along (abs-capture-time) is moved back by it.
        reframe = self._reframer.delay_frames if self._reframer else 0
        self.delay_s = (reframe + self.engine_delay_frames) / rate_hz
        self._mic_sq = 0.0
        self._out_sq = 0.0
        self.speech_probability = 0.0

    @property
    def engine_name(self) -> str:
        return self.engine.name if self.engine else "off"

    def played(self, block: np.ndarray, dac_s: float, adc_s: float) -> None:
        """Audio thread: the block just handed to the output callback (``dac_s``) in the
        callback that captured the block at ``adc_s``."""
        if self.opts.aec:
            self.reference.played(block, dac_s, adc_s)

    def process(self, block: np.ndarray, block_index: int, adc_s: float) -> CaptureResult:
        """Sender thread: one captured block (frames, channels) with its block counter
        (for the reference's alignment) and capture time."""
        c = self.counters
        c.blocks += 1
        out, capture_s = block, adc_s
        if self._reframer is not None and self.engine is not None:
            n = len(block)
            if self.opts.aec:
                far = self.reference.reference(block_index * n, adc_s, n)
                c.reference_missing_frames = self.reference.missing_frames
            else:
                far = np.zeros_like(block)
            probs = []
            for near_f, far_f in self._reframer.push(block, far):
                self._reframer.put(self.engine.process(near_f, far_f))
                probs.append(self.engine.speech_probability)
            if probs:
                self.speech_probability = max(probs)
            out = self._reframer.pull()
            capture_s = adc_s - self.delay_s
            self._mic_sq = 0.99 * self._mic_sq + 0.01 * float(np.mean(block**2))
            self._out_sq = 0.99 * self._out_sq + 0.01 * float(np.mean(out**2))
        if self.gate is not None and not self.gate.update(
            self.speech_probability, _level_dbfs(out)
        ):
            c.silent += 1
            return CaptureResult(out, capture_s, False, "silence")
        if not self.talk.open:
            c.held += 1
            return CaptureResult(out, capture_s, False, "muted")
        c.sent += 1
        return CaptureResult(out, capture_s, True)

    def stats(self) -> dict:
        """For the statistics snapshot."""
        c = self.counters
        d: dict = {
            "talk": self.talk.state(),
            "processing": self.engine_name,
            "vad_silent": c.silent,
            "talk_held": c.held,
        }
        if self.engine is not None:
            d["speech"] = round(self.speech_probability, 2)
            gain = getattr(self.engine, "gain_db", None)
            d["agc_gain_db"] = None if gain is None else round(gain, 1)
            # Level after processing against the microphone's, smoothed over ~1 s of
            # blocks: negative while echo and noise are taken out, positive with AGC gain.
            d["processing_gain_db"] = round(
                10 * math.log10((self._out_sq + 1e-12) / (self._mic_sq + 1e-12)), 1
            )
        if self.opts.aec:
            d["aec_realigned"] = self.reference.realigned
            d["aec_reference_missing_ms"] = round(
                self.reference.missing_frames * 1000 / self.rate_hz, 1
            )
        return d
