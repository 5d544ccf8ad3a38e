"""Test material for bench/codecs.py: speech and a generated music piece, 48 kHz 16-bit.

Both are made here, from nothing but code and espeak-ng, so there is no licence to
track: the speech is espeak-ng (GPL-3 program; its output is not covered by its
licence) through :func:`rtai.audio.signals.speech`, the music is synthesized below.

* speech: the two espeak-ng voices the rest of the project uses, alternating, with a
  quiet room-noise floor (pink-ish noise at -66 dBFS RMS) under it, since a real
  microphone never delivers digital zeros between words. Stereo: the same voice on
  both channels through slightly different room reflections (a near-mono source,
  as a stereo microphone pair gives).
* music: a 4-bar loop at 112 BPM, played twice: a plucked bass, sustained piano-like
  chords (inharmonic partials, decay), a lead line with vibrato, kick, snare and
  hi-hat (noise), each panned, summed through a stereo reverb (exponentially decaying
  noise impulse responses, different left and right), mastered to -1 dBFS peak and
  put on the 16-bit grid with TPDF dither.
"""

from __future__ import annotations

import functools

import numpy as np
from scipy.signal import butter, fftconvolve, lfilter, sosfilt

from rtai.audio.signals import speech

RATE_HZ = 48000


def _to16(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    dither = rng.random(x.shape) - rng.random(x.shape)  # TPDF, +-1 LSB
    return np.clip(np.rint(x * 32768.0 + dither), -32768, 32767).astype(np.int16)


def _pink(n: int, rng: np.random.Generator) -> np.ndarray:
    white = rng.standard_normal(n)
    # Paul Kellet's economy pink filter coefficients (a public textbook filter).
    b = [0.049922035, -0.095993537, 0.050612699, -0.004408786]
    a = [1.0, -2.494956002, 2.017265875, -0.522189400]
    pink = lfilter(b, a, white)
    return pink / np.sqrt(np.mean(pink**2))


@functools.lru_cache(maxsize=4)
def speech16(seconds: float = 12.0, channels: int = 1) -> np.ndarray:
    """int16 (frames, channels) speech with a room-noise floor."""
    rng = np.random.default_rng(2026)
    n = int(seconds * RATE_HZ)
    half = n // 2
    voice = np.concatenate(
        [speech(RATE_HZ, half / RATE_HZ, 0), speech(RATE_HZ, (n - half) / RATE_HZ, 1)]
    )
    voice = voice.astype(np.float64)
    floor = 10 ** (-66 / 20)
    if channels == 1:
        x = voice + floor * _pink(n, rng)
        return _to16(x, rng)[:, None]
    out = []
    for ch in range(channels):
        ir = np.zeros(int(0.03 * RATE_HZ))
        ir[0] = 1.0
        taps = rng.integers(40, ir.size, 6)
        ir[taps] += rng.uniform(-0.25, 0.25, taps.size)
        delayed = fftconvolve(voice, ir)[:n]
        out.append(0.9 * delayed + floor * _pink(n, rng) + 0.0 * ch)
    return _to16(np.stack(out, axis=1), rng)


def _env(n: int, attack_s: float, decay_s: float) -> np.ndarray:
    t = np.arange(n) / RATE_HZ
    a = np.minimum(1.0, t / max(attack_s, 1e-4))
    return a * np.exp(-t / decay_s)


def _note(freq: float, dur_s: float, partials: int, decay_s: float, bright: float,
          inharm: float = 0.0, vibrato: float = 0.0, rng=None) -> np.ndarray:  # fmt: skip
    n = int(dur_s * RATE_HZ)
    t = np.arange(n) / RATE_HZ
    x = np.zeros(n)
    vib = 1.0 + vibrato * np.sin(2 * np.pi * 5.5 * t) * np.minimum(1.0, t / 0.3)
    for k in range(1, partials + 1):
        f = freq * k * np.sqrt(1.0 + inharm * k * k)
        if f >= 0.45 * RATE_HZ:
            break
        phase = 2 * np.pi * np.cumsum(f * vib) / RATE_HZ + (rng.uniform(0, 6.28) if rng else 0)
        x += (bright**k / k) * np.sin(phase) * np.exp(-t * k * 0.15 / decay_s)
    return x * _env(n, 0.005, decay_s)


def _place(track: np.ndarray, sound: np.ndarray, at_s: float) -> None:
    i = int(at_s * RATE_HZ)
    j = min(track.size, i + sound.size)
    if i < track.size:
        track[i:j] += sound[: j - i]


@functools.lru_cache(maxsize=4)
def music16(seconds: float = 12.0, channels: int = 2) -> np.ndarray:
    """int16 (frames, channels) generated multi-instrument music with reverb."""
    rng = np.random.default_rng(112)
    n = int(seconds * RATE_HZ)
    beat = 60.0 / 112
    bar = 4 * beat
    hz = lambda midi: 440.0 * 2 ** ((midi - 69) / 12)  # noqa: E731
    tracks = {name: np.zeros(n) for name in ("bass", "keys", "lead", "kick", "snare", "hat")}
    chords = [(57, 60, 64), (53, 57, 60), (48, 52, 55), (55, 59, 62)]  # Am F C G
    bass = [45, 41, 36, 43]
    lead = [76, 74, 72, 71, 72, 74, 76, 79, 77, 76, 74, 72, 71, 72, 74, 71]
    t0 = 0.0
    while t0 < seconds:
        for b in range(4):
            start = t0 + b * bar
            for i in range(8):
                _place(tracks["bass"], _note(hz(bass[b] + (12 if i % 4 == 3 else 0)),
                       beat / 2, 12, 0.25, 0.7, rng=rng), start + i * beat / 2)  # fmt: skip
            for m in chords[b]:
                _place(tracks["keys"], _note(hz(m), bar, 16, 1.2, 0.6, 1e-4, rng=rng), start)
            for i in range(4):
                _place(tracks["lead"], _note(hz(lead[(b * 4 + i) % 16]), beat * 0.95, 10, 0.6,
                       0.75, vibrato=0.004, rng=rng), start + i * beat)  # fmt: skip
            for i in range(4):
                k = int(0.25 * RATE_HZ)
                tk = np.arange(k) / RATE_HZ
                kick = np.sin(2 * np.pi * np.cumsum(50 + 100 * np.exp(-tk / 0.03)) / RATE_HZ)
                _place(tracks["kick"], kick * np.exp(-tk / 0.12), start + i * beat)
                if i % 2 == 1:
                    s = int(0.2 * RATE_HZ)
                    ts = np.arange(s) / RATE_HZ
                    snare = (rng.standard_normal(s) * 0.7 + np.sin(2 * np.pi * 190 * ts)) * np.exp(
                        -ts / 0.06
                    )
                    _place(tracks["snare"], snare, start + i * beat)
            for i in range(8):
                h = int(0.06 * RATE_HZ)
                hat = rng.standard_normal(h) * np.exp(-np.arange(h) / RATE_HZ / 0.015)
                _place(tracks["hat"], hat, start + i * beat / 2)
        t0 += 4 * bar
    hp = butter(4, 7000, "highpass", fs=RATE_HZ, output="sos")
    tracks["hat"] = sosfilt(hp, tracks["hat"])
    gains = {"bass": 0.5, "keys": 0.18, "lead": 0.3, "kick": 0.6, "snare": 0.25, "hat": 0.12}
    pans = {"bass": 0.0, "keys": -0.4, "lead": 0.35, "kick": 0.0, "snare": 0.1, "hat": 0.5}
    dry = np.zeros((n, 2))
    for name, x in tracks.items():
        p = (pans[name] + 1) * np.pi / 4
        dry[:, 0] += gains[name] * np.cos(p) * x
        dry[:, 1] += gains[name] * np.sin(p) * x
    wet = np.zeros_like(dry)
    m = int(1.2 * RATE_HZ)
    tir = np.arange(m) / RATE_HZ
    lp = butter(2, 6000, "lowpass", fs=RATE_HZ, output="sos")
    for ch in range(2):
        ir = sosfilt(lp, rng.standard_normal(m)) * np.exp(-tir / 0.35) * 0.02
        ir[: int(0.012 * RATE_HZ)] = 0.0  # pre-delay
        wet[:, ch] = fftconvolve(dry[:, ch], ir)[:n]
    mix = dry + wet
    mix *= 10 ** (-1 / 20) / np.max(np.abs(mix))
    out = _to16(mix, rng)
    if channels == 1:
        return ((out[:, :1].astype(np.int32) + out[:, 1:]) >> 1).astype(np.int16)
    return out
