"""Capture processing: echo cancellation, noise suppression, gain control, voice gate.

Runs on the sender thread, between the capture ring and the encoder (the audio
callback only copies blocks in and out). For each captured block:

1. :class:`~rtai.dsp.echo.EchoReference` gives what the speaker played at the time
   the block was captured (the exact blocks handed to the output callback, placed by
   their DAC times against the block's ADC time);
2. :class:`~rtai.dsp.echo.Reframer` cuts capture and reference into 10 ms frames;
3. the engine processes each frame: by default rtai's own echo canceller
   (:class:`~rtai.dsp.aec.EchoCanceller`, pure NumPy: it keeps the near-end talker
   through double talk), then WebRTC's high-pass, noise suppression, AGC2 and speech
   probability through ``pywebrtc-audio`` when that is installed (an energy voice
   detector and no NS/AGC when not); ``engine="webrtc"`` runs WebRTC's whole module
   instead (AEC3 included: it attenuates the near end during double talk, see
   docs/benchmarks.md);
4. :class:`VoiceGate` decides, from the speech probability and the level, whether
   the block is speech (sent) or silence (not sent: voice-activity DTX), with a fast
   energy onset so the first syllable is not clipped and a hangover so word endings
   are not;
5. :class:`TalkControl` (mute, hold-to-talk, a talk latch) may hold the block back
   as well.

Pure except for the engine (native code, no I/O): the session hands in blocks,
counters and times, and gets back the block, its capture time and whether to send it.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
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
    engine: str = "auto"  # auto (= rtai) | rtai | webrtc | numpy

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


class RtaiEngine:
    """rtai's own echo canceller (:class:`rtai.dsp.aec.EchoCanceller`: frequency-domain
    Kalman filter, loudspeaker non-linearity model, a residual-echo suppressor that
    leaves near-end-dominated bins alone), then, when pywebrtc-audio is installed and
    ``use_webrtc``, WebRTC's high-pass, noise suppression and speech probability (its
    AudioProcessor with AEC3 and AGC off) and its AGC2 on its own, told that the speech
    probability is 0 in frames the canceller found held only echo. Without it (the
    ``numpy`` engine), an energy speech detector and no noise suppression or gain
    control."""

    def __init__(
        self,
        rate_hz: int,
        channels: int,
        opts: ProcessingOptions,
        use_webrtc: bool = True,
        tail_s: float = 0.6,
        **aec_kwargs,
    ) -> None:
        from rtai.dsp.aec import EchoCanceller

        self.frame_frames = f = rate_hz // 100
        self.channels = channels
        self.aec = opts.aec
        partitions = max(1, math.ceil(tail_s * rate_hz / f))
        n = channels if opts.aec else 0
        self.cancellers = [EchoCanceller(f, partitions, **aec_kwargs) for _ in range(n)]
        self._ap = None
        if use_webrtc and _webrtc is not None:
            self._ap = _webrtc.AudioProcessor(
                sample_rate=rate_hz,
                num_channels=channels,
                echo_cancellation=False,
                noise_suppression=opts.ns,
                auto_gain_control=False,
                ns_level=NS_LEVEL,
            )
        # AGC2 on its own, told the speech probability: zero in frames the canceller
        # finds hold only (left-over) echo, so it does not turn the echo up as speech
        self._gc = None
        if self._ap is not None and opts.agc:
            self._gc = _webrtc.GainController(sample_rate=rate_hz, num_channels=channels)
        self.name = "rtai" if self._ap is not None else "numpy"
        self._floor_db = -90.0
        self.speech_probability = 0.0

    @property
    def gain_db(self) -> float | None:
        return float(self._gc.gain_db) if self._gc is not None else None

    def reference_moved(self) -> None:
        """The reference was realigned (an xrun, a restarted stream): the echo now sits
        elsewhere against it, so the cancellers must learn it again quickly."""
        for canceller in self.cancellers:
            canceller.restart()

    def process(self, near: np.ndarray, far: np.ndarray) -> np.ndarray:
        if self.cancellers:
            out = np.empty(near.shape)
            for c, canceller in enumerate(self.cancellers):
                out[:, c] = canceller.process(near[:, c].astype(np.float64), far[:, c])
            out32 = out.astype(np.float32)
        else:
            out32 = np.asarray(near, dtype=np.float32)
        echo_only = bool(self.cancellers) and all(c.echo_only for c in self.cancellers)
        if self._ap is not None:
            out32 = self._ap.process(out32.reshape(-1), None).reshape(-1, self.channels)
            p = 0.0 if echo_only else float(self._ap.speech_probability)
            if self._gc is not None:
                out32 = self._gc.process(out32.reshape(-1), p).reshape(-1, self.channels)
            self.speech_probability = p
            return out32
        # Energy speech probability against a floor that falls at once and rises slowly.
        level_db = 10 * math.log10(float(np.mean(np.square(out32, dtype=np.float64))) + 1e-12)
        self._floor_db = min(level_db, self._floor_db + 0.05)
        over = level_db - self._floor_db
        p = float(min(1.0, max(0.0, (over - 6.0) / 12.0)))
        self.speech_probability = 0.0 if echo_only else p
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
    """``auto``/``rtai``: rtai's echo canceller with WebRTC's NS and AGC when installed;
    ``webrtc``: WebRTC's whole module (AEC3 included); ``numpy``: rtai's canceller, no
    pywebrtc-audio at all."""
    if opts.engine == "webrtc":
        return WebRtcEngine(rate_hz, channels, opts)
    return RtaiEngine(rate_hz, channels, opts, use_webrtc=opts.engine != "numpy")


def fallback_warning(opts: ProcessingOptions) -> str | None:
    """One line to tell the user what the fallback engine cannot do, or None."""
    if webrtc_available() or not opts.any_dsp:
        return None
    lost = [n for n, on in (("noise suppression", opts.ns), ("gain control", opts.agc)) if on]
    tail = f"; {' and '.join(lost)} off" if lost else ""
    return (
        "pywebrtc-audio is not installed: rtai's echo canceller with an energy voice"
        f" detector{tail} (pip install pywebrtc-audio for WebRTC's NS, AGC and VAD)"
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
    """Mute and push-to-talk, set by the face (keys), read by the sender thread.

    Push-to-talk is held, not toggled: a terminal reports key presses but no release,
    and a held key repeats (after the auto-repeat delay, typically 250 to 660 ms, then
    every 30 to 50 ms). So :meth:`press_talk` opens talking at once, and talking stays
    open while presses keep arriving: it closes when none has come for ``first_gap_s``
    after the first press (longer than any auto-repeat delay) or ``repeat_gap_s`` once
    repeats are coming. :meth:`toggle_talk` latches talking on or off (a press of the
    talk key while latched releases the latch into an ordinary hold). Every time comes
    from ``clock`` (``time.monotonic``; tests pass a simulated one).
    """

    def __init__(
        self,
        ptt: bool = False,
        clock: Callable[[], float] = time.monotonic,
        first_gap_s: float = 0.75,
        repeat_gap_s: float = 0.2,
    ) -> None:
        self.ptt = ptt
        self.muted = False
        self.latched = False  # talking locked on (toggled)
        self.clock = clock
        self.first_gap_s = first_gap_s
        self.repeat_gap_s = repeat_gap_s
        self._last_press: float | None = None
        self._repeats = 0  # presses after the first in the current hold
        self._lock = threading.Lock()

    def _held(self, now: float) -> bool:
        if self._last_press is None:
            return False
        gap = self.first_gap_s if self._repeats == 0 else self.repeat_gap_s
        return now - self._last_press <= gap

    @property
    def holding(self) -> bool:
        """The talk key is held down (presses still arriving)."""
        with self._lock:
            return self._held(self.clock())

    @property
    def talking(self) -> bool:
        return self.latched or self.holding

    @property
    def open(self) -> bool:
        return not self.muted and (not self.ptt or self.talking)

    def toggle_mute(self) -> None:
        with self._lock:
            self.muted = not self.muted

    def press_talk(self) -> None:
        """One press (or auto-repeat) of the push-to-talk key."""
        with self._lock:
            now = self.clock()
            if self._held(now):
                self._repeats += 1
            else:
                self._repeats = 0
            self._last_press = now
            self.latched = False

    def toggle_talk(self) -> None:
        """Latch talking on, or release the latch (and any hold)."""
        with self._lock:
            self.latched = not self.latched
            self._last_press = None

    def state(self) -> str:
        """``muted``, ``ptt`` (waiting for the key), ``talk`` (held), ``locked`` or ``open``."""
        if self.muted:
            return "muted"
        if self.ptt:
            if self.latched:
                return "locked"
            return "talk" if self.holding else "ptt"
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
        self._realigned = 0
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
                if self.reference.realigned != self._realigned:  # the echo moved
                    self._realigned = self.reference.realigned
                    moved = getattr(self.engine, "reference_moved", None)
                    if moved is not None:
                        moved()
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
