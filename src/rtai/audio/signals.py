"""Generated test signals: the audio edge used when ``--input`` is not a sound card.

Every source here hands out float32 blocks shaped ``(frames, channels)`` with values in
[-1, 1], exactly ``frames`` long on every :meth:`Source.read` (zero-padded after the end).
Generated signals are computed from the absolute frame index, so the output does not
depend on how reads are split into blocks, and the same spec always gives the same
samples (the noise is seeded, the speech is a fixed text or a seeded synthetic voice).

Specs accepted by :func:`make_signal`:

``tone[:HZ]``
    Sine at HZ (default 440 Hz), peak -12 dBFS (a full-scale sine is 0 dBFS).
``chirp``
    Logarithmic sweep from 100 Hz to ``min(8000, rate_hz / 2.2)`` Hz in 3 s, repeating,
    peak -12 dBFS, with 5 ms fades so the restart does not click.
``noise``
    White Gaussian noise, RMS -20 dBFS, seeded.
``speech[:VOICE]``
    English sentences from espeak-ng (VOICE 0 or 1 picks one of two texts and voices),
    looped. Without espeak-ng, a deterministic synthetic voice-like signal instead.
``silence``
    Zeros.

Channels after the first carry something distinct but correlated, so a channel swap
is detectable: for ``tone`` channel ``c`` is the tone at ``HZ * 0.75**c``; for the other
signals channel ``c`` is channel 0 delayed by ``c`` ms and ``3*c`` dB quieter.

Thread context: sources are single-consumer; :meth:`Source.read` does no I/O (speech is
synthesised when the source is made) and may be called from an audio callback.
"""

from __future__ import annotations

import functools
import io
import logging
import math
import shutil
import subprocess
from collections.abc import Callable
from typing import Protocol, runtime_checkable

import numpy as np
import soundfile as sf
from scipy.signal import lfilter, resample_poly

__all__ = [
    "ArraySource",
    "SIGNAL_NAMES",
    "Source",
    "is_signal_spec",
    "make_signal",
    "speech",
]

log = logging.getLogger(__name__)

SIGNAL_NAMES = ("tone", "chirp", "noise", "speech", "silence")
_SPEC_HELP = "tone[:HZ], chirp, noise, speech[:0|1], silence"

TONE_DEFAULT_HZ = 440.0
TONE_PEAK_DBFS = -12.0
NOISE_RMS_DBFS = -20.0
NOISE_SEED = 20240611
CHIRP_START_HZ = 100.0
CHIRP_MAX_HZ = 8000.0
CHIRP_PERIOD_S = 3.0
CHIRP_FADE_S = 0.005
SPEECH_RMS_DBFS = -20.0  # level of the active (non-pause) parts
SPEECH_PEAK_MAX = 0.9
SPEECH_LOOP_GAP_S = 0.4  # silence added before the clip repeats
CHANNEL_DELAY_S = 0.001  # extra delay per channel after the first
CHANNEL_GAIN_DB = -3.0  # extra gain per channel after the first
TONE_CHANNEL_RATIO = 0.75  # tone frequency ratio per channel after the first


def _db_to_amplitude(level_db: float) -> float:
    return float(10.0 ** (level_db / 20.0))


@runtime_checkable
class Source(Protocol):
    """Something that produces audio blocks: a generated signal or a sound file.

    ``read(frames)`` returns a new float32 array shaped ``(frames, channels)``, exactly
    ``frames`` long, zero-padded once the content has run out. ``finished`` becomes True
    once all real content has been returned (never, for an endless signal).
    """

    rate_hz: int
    channels: int

    def read(self, frames: int) -> np.ndarray: ...

    @property
    def finished(self) -> bool: ...

    def close(self) -> None: ...


def _check_frames(frames: int) -> int:
    frames = int(frames)
    if frames < 0:
        raise ValueError(f"cannot read a negative number of frames ({frames})")
    return frames


class ArraySource:
    """A :class:`Source` that plays an in-memory array once.

    ``data`` is shaped ``(frames, channels)`` or ``(frames,)`` for mono; it is converted
    to float32 (copied only if needed) and must not be modified while the source is in use.
    """

    def __init__(self, data: np.ndarray, rate_hz: int) -> None:
        array = np.asarray(data, dtype=np.float32)
        if array.ndim == 1:
            array = array[:, np.newaxis]
        if array.ndim != 2 or array.shape[1] < 1:
            raise ValueError(f"audio array must be shaped (frames, channels), got {array.shape}")
        if rate_hz <= 0:
            raise ValueError(f"sample rate must be positive, got {rate_hz} Hz")
        self._data = array
        self.rate_hz = int(rate_hz)
        self.channels = int(array.shape[1])
        self._position_frames = 0

    @property
    def total_frames(self) -> int:
        """Number of frames of real content."""
        return int(self._data.shape[0])

    @property
    def position_frames(self) -> int:
        """Frames of real content returned so far."""
        return self._position_frames

    @property
    def finished(self) -> bool:
        return self._position_frames >= self._data.shape[0]

    def read(self, frames: int) -> np.ndarray:
        frames = _check_frames(frames)
        out = np.zeros((frames, self.channels), dtype=np.float32)
        start = self._position_frames
        stop = min(start + frames, self._data.shape[0])
        if stop > start:
            out[: stop - start] = self._data[start:stop]
            self._position_frames = stop
        return out

    def close(self) -> None:
        self._position_frames = self._data.shape[0]


# A renderer maps absolute frame indices (int64, contiguous, may be negative) and a
# channel number to float64 samples.
_Renderer = Callable[[np.ndarray, int], np.ndarray]


class _GeneratedSource:
    """A :class:`Source` computed from the absolute frame index, optionally time-limited."""

    def __init__(
        self,
        render: _Renderer,
        rate_hz: int,
        channels: int,
        total_frames: int | None,
    ) -> None:
        self._render = render
        self.rate_hz = rate_hz
        self.channels = channels
        self._total_frames = total_frames
        self._position_frames = 0
        self._closed = False

    @property
    def total_frames(self) -> int | None:
        """Number of frames of real content, or None for an endless signal."""
        return self._total_frames

    @property
    def position_frames(self) -> int:
        """Frames of real content returned so far."""
        return self._position_frames

    @property
    def finished(self) -> bool:
        if self._closed:
            return True
        return self._total_frames is not None and self._position_frames >= self._total_frames

    def read(self, frames: int) -> np.ndarray:
        frames = _check_frames(frames)
        out = np.zeros((frames, self.channels), dtype=np.float32)
        if self.finished:
            return out
        valid = frames
        if self._total_frames is not None:
            valid = min(frames, self._total_frames - self._position_frames)
        if valid > 0:
            index = np.arange(self._position_frames, self._position_frames + valid, dtype=np.int64)
            for channel in range(self.channels):
                out[:valid, channel] = self._render(index, channel)
            self._position_frames += valid
        return out

    def close(self) -> None:
        self._closed = True


def _delayed_channels(mono: Callable[[np.ndarray], np.ndarray], rate_hz: int) -> _Renderer:
    """Channel ``c`` is ``mono`` delayed by ``c`` ms and ``3*c`` dB down; silent before 0."""
    delay_frames = max(1, round(CHANNEL_DELAY_S * rate_hz))

    def render(index: np.ndarray, channel: int) -> np.ndarray:
        shifted = index - channel * delay_frames
        out = np.zeros(index.shape[0], dtype=np.float64)
        live = shifted >= 0
        if live.any():
            # Indices are contiguous, so the live part is a suffix.
            first = int(np.argmax(live))
            out[first:] = mono(shifted[first:])
        return out * _db_to_amplitude(CHANNEL_GAIN_DB * channel)

    return render


def _tone_renderer(frequency_hz: float, rate_hz: int) -> _Renderer:
    amplitude = _db_to_amplitude(TONE_PEAK_DBFS)

    def render(index: np.ndarray, channel: int) -> np.ndarray:
        cycles_per_frame = frequency_hz * TONE_CHANNEL_RATIO**channel / rate_hz
        # Reduce the phase to [0, 1) in float64 before sin() to keep precision for hours.
        phase = np.mod(index * cycles_per_frame, 1.0)
        return amplitude * np.sin(2.0 * np.pi * phase)

    return render


def chirp_stop_hz(rate_hz: int) -> float:
    """Top frequency of the ``chirp`` sweep at ``rate_hz``."""
    return min(CHIRP_MAX_HZ, rate_hz / 2.2)


def _chirp_period(rate_hz: int) -> np.ndarray:
    """One period of the log sweep, faded in and out, as float64."""
    period_frames = round(CHIRP_PERIOD_S * rate_hz)
    t_s = np.arange(period_frames, dtype=np.float64) / rate_hz
    f0_hz = CHIRP_START_HZ
    f1_hz = chirp_stop_hz(rate_hz)
    k = math.log(f1_hz / f0_hz)
    # Instantaneous frequency f0 * (f1/f0)**(t/T); phase is its integral.
    phase = 2.0 * np.pi * f0_hz * CHIRP_PERIOD_S / k * np.expm1(k * t_s / CHIRP_PERIOD_S)
    wave = _db_to_amplitude(TONE_PEAK_DBFS) * np.sin(phase)
    fade_frames = max(1, round(CHIRP_FADE_S * rate_hz))
    ramp = 0.5 - 0.5 * np.cos(np.pi * np.arange(fade_frames) / fade_frames)
    wave[:fade_frames] *= ramp
    wave[-fade_frames:] *= ramp[::-1]
    return wave


def _looped(clip: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    length = clip.shape[0]

    def mono(index: np.ndarray) -> np.ndarray:
        return clip[np.mod(index, length)]

    return mono


class _NoiseTable:
    """Seeded white noise with random access: chunk ``k`` comes from its own generator."""

    CHUNK_FRAMES = 8192
    CACHE_CHUNKS = 4

    def __init__(self, seed: int, rms: float) -> None:
        self._seed = seed
        self._rms = rms
        self._cache: dict[int, np.ndarray] = {}

    def _chunk(self, k: int) -> np.ndarray:
        chunk = self._cache.get(k)
        if chunk is None:
            rng = np.random.default_rng([self._seed, k])
            chunk = np.clip(rng.standard_normal(self.CHUNK_FRAMES) * self._rms, -1.0, 1.0)
            if len(self._cache) >= self.CACHE_CHUNKS:
                self._cache.pop(next(iter(self._cache)))
            self._cache[k] = chunk
        return chunk

    def __call__(self, index: np.ndarray) -> np.ndarray:
        first_chunk = int(index[0]) // self.CHUNK_FRAMES
        last_chunk = int(index[-1]) // self.CHUNK_FRAMES
        span = np.concatenate([self._chunk(k) for k in range(first_chunk, last_chunk + 1)])
        return span[index - first_chunk * self.CHUNK_FRAMES]


# --- speech ----------------------------------------------------------------------------

_SPEECH_SCRIPTS = (
    (
        "en-us",
        "50",
        "Hello, can you hear me clearly? This is the first station on the intercom. "
        "I am reading a few short sentences, so that you can judge the delay and the "
        "quality of the sound. Please tell me if my voice breaks up, or if you hear an echo.",
    ),
    (
        "en-gb+f3",
        "60",
        "Yes, I can hear you well. This is the second station answering. "
        "The weather here is calm, and the coffee is still warm. "
        "Let me count for you: one, two, three, four, five, six, seven. "
        "We can keep talking while the network changes underneath us.",
    ),
)


def _espeak_path() -> str | None:
    return shutil.which("espeak-ng")


def _normalise_speech(clip: np.ndarray, rate_hz: int) -> np.ndarray:
    """Scale so the active parts sit at SPEECH_RMS_DBFS, with the peak below the limit."""
    frame_len = max(1, round(0.02 * rate_hz))
    usable = clip.shape[0] // frame_len * frame_len
    if usable == 0:
        return clip
    power = np.mean(clip[:usable].reshape(-1, frame_len) ** 2, axis=1)
    top = float(power.max())
    if top <= 0.0:
        return clip
    active = power[power > top * 1e-4]  # within 40 dB of the loudest 20 ms
    gain = _db_to_amplitude(SPEECH_RMS_DBFS) / math.sqrt(float(active.mean()))
    peak = float(np.max(np.abs(clip))) * gain
    if peak > SPEECH_PEAK_MAX:
        gain *= SPEECH_PEAK_MAX / peak
    return clip * gain


def _espeak_clip(espeak: str, rate_hz: int, voice_seed: int) -> np.ndarray | None:
    voice, pitch, text = _SPEECH_SCRIPTS[voice_seed % len(_SPEECH_SCRIPTS)]
    command = [espeak, "--stdout", "-v", voice, "-p", pitch, "-s", "165", text]
    try:
        done = subprocess.run(command, capture_output=True, timeout=30, check=True)
        wav, wav_rate_hz = sf.read(io.BytesIO(done.stdout), dtype="float64", always_2d=True)
    except (OSError, subprocess.SubprocessError, sf.LibsndfileError, RuntimeError) as exc:
        log.warning("espeak-ng failed (%s); using the synthetic voice instead", exc)
        return None
    mono = wav.mean(axis=1)
    if wav_rate_hz != rate_hz:
        g = math.gcd(int(rate_hz), int(wav_rate_hz))
        mono = resample_poly(mono, rate_hz // g, int(wav_rate_hz) // g)
    return mono


_VOWEL_FORMANTS_HZ = np.array(
    [
        [730.0, 1090.0, 2440.0],  # a
        [270.0, 2290.0, 3010.0],  # i
        [300.0, 870.0, 2240.0],  # u
        [530.0, 1840.0, 2480.0],  # e
        [570.0, 840.0, 2410.0],  # o
    ]
)
_FORMANT_BANDWIDTHS_HZ = np.array([80.0, 100.0, 140.0])


def _resonate(x: np.ndarray, formants_hz: np.ndarray, rate_hz: int) -> np.ndarray:
    """Cascade of two-pole resonators with unit gain at 0 Hz (Klatt style)."""
    for freq_hz, bandwidth_hz in zip(formants_hz, _FORMANT_BANDWIDTHS_HZ, strict=True):
        if freq_hz >= 0.45 * rate_hz:
            continue
        r = math.exp(-math.pi * bandwidth_hz / rate_hz)
        b1 = 2.0 * r * math.cos(2.0 * math.pi * freq_hz / rate_hz)
        b2 = -r * r
        x = lfilter([1.0 - b1 - b2], [1.0, -b1, -b2], x)
    return x


def synthetic_voice(rate_hz: int, voice_seed: int = 0, seconds: float = 12.0) -> np.ndarray:
    """A deterministic voice-like signal (float64 mono, not level-normalised).

    A glottal-pulse train (Rosenberg pulse, differentiated) whose pitch wanders between
    about 100 and 220 Hz, shaped by a 4 Hz syllable envelope with pauses between words
    and phrases, and filtered through the formants of a vowel chosen per syllable.
    """
    rng = np.random.default_rng([7919, voice_seed])
    n_frames = round(seconds * rate_hz)
    t_s = np.arange(n_frames, dtype=np.float64) / rate_hz
    syllable_s = 0.25  # 4 syllables per second
    n_syllables = math.ceil(seconds / syllable_s) + 1
    syllable = (t_s / syllable_s).astype(np.int64)
    within = t_s / syllable_s - syllable

    # Syllable plan: some word gaps at random, and a phrase pause every 11 syllables.
    silent = rng.random(n_syllables) < 0.15
    silent |= np.arange(n_syllables) % 11 >= 9
    vowel = rng.integers(0, _VOWEL_FORMANTS_HZ.shape[0], n_syllables)
    loudness = rng.uniform(0.6, 1.0, n_syllables)
    # Envelope: quick attack, slower decay, zero at both syllable edges.
    shape = np.sin(np.pi * within**0.7) ** 2
    envelope = shape * np.where(silent, 0.0, loudness)[syllable]

    # Pitch 100..220 Hz: a slow intonation swing plus a per-syllable step, smoothed.
    centre_hz = 160.0 if voice_seed % 2 == 0 else 175.0
    swing_hz = 35.0 if voice_seed % 2 == 0 else 30.0
    step_hz = rng.uniform(-15.0, 15.0, n_syllables)[syllable]
    smooth = np.hanning(max(3, round(0.05 * rate_hz)))
    step_hz = np.convolve(step_hz, smooth / smooth.sum(), mode="same")
    phase0 = rng.uniform(0.0, 2.0 * np.pi)
    pitch_hz = centre_hz + swing_hz * np.sin(2.0 * np.pi * 0.3 * t_s + phase0) + step_hz
    pitch_hz = np.clip(pitch_hz, 100.0, 220.0)

    # Rosenberg glottal pulse over each pitch period, then differentiated (lip radiation).
    cycle = np.mod(np.cumsum(pitch_hz) / rate_hz, 1.0)
    rise, fall = 0.4, 0.16
    pulse = np.where(
        cycle < rise,
        0.5 * (1.0 - np.cos(np.pi * cycle / rise)),
        np.where(cycle < rise + fall, np.cos(0.5 * np.pi * (cycle - rise) / fall), 0.0),
    )
    excitation = np.diff(pulse, prepend=0.0)
    excitation += 0.002 * rng.standard_normal(n_frames)  # a little breath
    excitation *= envelope

    voice = np.zeros(n_frames, dtype=np.float64)
    for v, formants_hz in enumerate(_VOWEL_FORMANTS_HZ):
        # The envelope is zero at syllable edges, so switching filters there is silent.
        use = vowel[syllable] == v
        if use.any():
            voice += np.where(use, _resonate(excitation, formants_hz, rate_hz), 0.0)
    return voice


@functools.lru_cache(maxsize=16)
def _speech_clip(rate_hz: int, voice_seed: int, espeak: str | None) -> np.ndarray:
    clip = _espeak_clip(espeak, rate_hz, voice_seed) if espeak else None
    if clip is None:
        clip = synthetic_voice(rate_hz, voice_seed)
    clip = _normalise_speech(clip, rate_hz)
    gap = np.zeros(round(SPEECH_LOOP_GAP_S * rate_hz))
    clip = np.clip(np.concatenate([clip, gap]), -1.0, 1.0).astype(np.float32)
    clip.flags.writeable = False
    return clip


def speech_clip(rate_hz: int, voice_seed: int = 0) -> np.ndarray:
    """One loop of the speech signal (float32 mono, read-only, cached per rate and voice)."""
    if rate_hz <= 0:
        raise ValueError(f"sample rate must be positive, got {rate_hz} Hz")
    return _speech_clip(int(rate_hz), int(voice_seed), _espeak_path())


def speech(rate_hz: int, seconds: float, voice_seed: int = 0) -> np.ndarray:
    """``seconds`` of looped speech at ``rate_hz`` as float32 mono ``(frames,)``.

    ``voice_seed`` 0 and 1 give different texts and voices (two peers in a demo say
    different things); other seeds reuse them (``voice_seed % 2``) with espeak-ng, and
    give further variants with the synthetic fallback voice.
    """
    if seconds < 0:
        raise ValueError(f"duration must not be negative, got {seconds} s")
    clip = speech_clip(rate_hz, voice_seed)
    return np.resize(clip, round(seconds * rate_hz)).astype(np.float32, copy=False)


# --- specs ---------------------------------------------------------------------------


def _split_spec(spec: str) -> tuple[str, str | None]:
    name, sep, arg = spec.strip().partition(":")
    return name.strip().lower(), (arg.strip() if sep else None)


def is_signal_spec(s: str) -> bool:
    """True if ``s`` names a generated signal (``tone``, ``tone:440``, ``noise``, ...).

    Only the name before ``:`` is checked, so a malformed argument such as ``tone:abc``
    still counts and :func:`make_signal` explains what is wrong with it.
    """
    return _split_spec(s)[0] in SIGNAL_NAMES


def _bad_spec(spec: str, why: str) -> ValueError:
    return ValueError(f"{why} in signal spec {spec!r}; valid specs: {_SPEC_HELP}")


def make_signal(spec: str, rate_hz: int, channels: int, seconds: float | None = None) -> Source:
    """Make a generated :class:`Source` from a spec such as ``tone:440`` or ``speech``.

    ``seconds`` limits the signal (then ``finished`` turns True at the end); None means
    endless. Raises ValueError, with a one-line message listing the valid specs, for an
    unknown spec or a bad argument.
    """
    if rate_hz <= 0:
        raise ValueError(f"sample rate must be positive, got {rate_hz} Hz")
    if channels < 1:
        raise ValueError(f"channel count must be at least 1, got {channels}")
    if seconds is not None and (seconds < 0 or not math.isfinite(seconds)):
        raise ValueError(f"signal duration must be a non-negative number of seconds: {seconds}")
    rate_hz = int(rate_hz)
    name, arg = _split_spec(spec)
    if name not in SIGNAL_NAMES:
        raise ValueError(f"unknown signal {spec!r}; valid specs: {_SPEC_HELP}")
    if arg is not None and name not in ("tone", "speech"):
        raise _bad_spec(spec, f"{name} takes no argument")

    render: _Renderer
    if name == "tone":
        frequency_hz = TONE_DEFAULT_HZ
        if arg is not None:
            text = arg.lower().removesuffix("hz").strip()
            try:
                frequency_hz = float(text)
            except ValueError:
                raise _bad_spec(spec, f"tone frequency {arg!r} is not a number") from None
        if not 0.0 < frequency_hz < rate_hz / 2:
            raise _bad_spec(
                spec, f"tone frequency must be between 0 and {rate_hz / 2:g} Hz (half the rate)"
            )
        render = _tone_renderer(frequency_hz, rate_hz)
    elif name == "chirp":
        render = _delayed_channels(_looped(_chirp_period(rate_hz)), rate_hz)
    elif name == "noise":
        render = _delayed_channels(
            _NoiseTable(NOISE_SEED, _db_to_amplitude(NOISE_RMS_DBFS)), rate_hz
        )
    elif name == "speech":
        voice_seed = 0
        if arg is not None:
            if arg not in ("0", "1"):
                raise _bad_spec(spec, f"speech voice must be 0 or 1, not {arg!r}")
            voice_seed = int(arg)
        clip = speech_clip(rate_hz, voice_seed).astype(np.float64)
        render = _delayed_channels(_looped(clip), rate_hz)
    else:  # silence

        def render(index: np.ndarray, channel: int) -> np.ndarray:
            return np.zeros(index.shape[0], dtype=np.float64)

    total_frames = None if seconds is None else round(seconds * rate_hz)
    return _GeneratedSource(render, rate_hz, channels, total_frames)
