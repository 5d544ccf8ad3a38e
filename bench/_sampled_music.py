"""Music played by recorded instruments, for bench/codecs.py: a score of our own,
rendered by FluidSynth through the Fluid (R3) General MIDI SoundFont, 48 kHz 16-bit.

The synthetic piece in :mod:`_codec_signals` is built from sine partials and white
noise; this one is built from recordings of real instruments (the SoundFont's samples:
piano, strings, bass, guitar, flute and a drum kit, each recorded with its own noise
floor and room), so the coder sees what a microphone gives. Nothing is committed: the
score is written below, the samples come from Debian's ``fluid-soundfont-gm`` package
(Frank Wen's Fluid R3, released under the MIT licence, see
/usr/share/doc/fluid-soundfont-gm/copyright) and ``fluidsynth`` renders them, with its
default reverb and chorus, to 32-bit float. The render is then mastered like the
synthetic piece: scaled to -1 dBFS peak and put on the 16-bit grid with TPDF dither.

Three pieces over one 8-bar progression in D major (I-vi-IV-V, ii-V7-iii-vi) and one
tune, repeated as long as asked:

* band (100 BPM): a piano plays the chords broken in eighths, strings hold them, a
  fingered bass walks root-fifth, a steel guitar strums the off-beats, a flute plays
  the tune, and the drum kit (General MIDI channel 10) plays kick, snare, closed and
  open hi-hat and a ride: dense, with cymbals, as pop is.
* piano (84 BPM): solo piano, left-hand arpeggios under the sustain pedal, the tune in
  the right hand.
* strings (72 BPM): a string ensemble holds the chords, a cello plays the bass line, a
  violin the tune, a harp arpeggiates.
"""

from __future__ import annotations

import functools
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf
from _codec_signals import RATE_HZ, _to16

SOUNDFONT = Path("/usr/share/sounds/sf2/FluidR3_GM.sf2")
TICKS = 480  # per quarter note

DRUMS = 9  # General MIDI's percussion channel
KICK, SNARE, CLOSED_HAT, OPEN_HAT, RIDE = 36, 38, 42, 46, 51

# Eight bars in D major: (root, chord tones as MIDI notes).
BARS = [
    (50, (62, 66, 69)),  # D
    (47, (59, 62, 66)),  # Bm
    (43, (55, 59, 62)),  # G
    (45, (57, 61, 64)),  # A
    (40, (52, 55, 59)),  # Em
    (45, (57, 61, 64, 67)),  # A7
    (42, (54, 57, 61)),  # F#m
    (47, (59, 62, 66)),  # Bm
]
MELODY = [  # (beat in the 8-bar phrase, MIDI note, beats held)
    (0, 74, 1.5), (1.5, 76, 0.5), (2, 78, 1), (3, 76, 1),
    (4, 74, 2), (6, 71, 1), (7, 73, 1),
    (8, 74, 1), (9, 71, 1), (10, 67, 2),
    (12, 69, 1), (13, 73, 1), (14, 76, 2),
    (16, 71, 1.5), (17.5, 74, 0.5), (18, 79, 1), (19, 78, 1),
    (20, 76, 1), (21, 73, 1), (22, 69, 2),
    (24, 73, 1), (25, 76, 1), (26, 81, 1.5), (27.5, 78, 0.5),
    (28, 78, 2), (30, 74, 2),
]  # fmt: skip


def _vlq(n: int) -> bytes:
    out = [n & 0x7F]
    n >>= 7
    while n:
        out.append(0x80 | (n & 0x7F))
        n >>= 7
    return bytes(reversed(out))


class Score:
    """Notes on channels, written out as a Standard MIDI File (format 0)."""

    def __init__(self, bpm: float, programs: dict[int, int], seed: int) -> None:
        self.bpm = bpm
        self.rng = np.random.default_rng(seed)
        self.events: list[tuple[int, int, bytes]] = []  # (tick, order, message)
        for channel, program in programs.items():
            self.events.append((0, 0, bytes([0xC0 | channel, program])))

    def note(self, beat: float, channel: int, key: int, velocity: int, beats: float) -> None:
        on = int(round(beat * TICKS))
        off = on + max(1, int(round(beats * TICKS)) - 10)
        velocity = int(np.clip(velocity + self.rng.integers(-8, 9), 1, 127))
        self.events.append((on, 1, bytes([0x90 | channel, key, velocity])))
        self.events.append((off, 0, bytes([0x80 | channel, key, 0])))  # offs before ons

    def pedal(self, beat: float, channel: int, down: bool) -> None:
        self.events.append((int(round(beat * TICKS)), 0, bytes([0xB0 | channel, 64, 127 * down])))

    def smf(self) -> bytes:
        tempo = int(60e6 / self.bpm).to_bytes(3, "big")
        track = bytearray(_vlq(0) + b"\xff\x51\x03" + tempo)
        last = 0
        for tick, _, message in sorted(self.events, key=lambda e: (e[0], e[1])):
            track += _vlq(tick - last) + message
            last = tick
        track += _vlq(0) + b"\xff\x2f\x00"
        head = b"MThd" + (6).to_bytes(4, "big") + (0).to_bytes(2, "big") + (1).to_bytes(2, "big")
        head += TICKS.to_bytes(2, "big")
        return bytes(head + b"MTrk" + len(track).to_bytes(4, "big") + track)


def band(bars: int) -> Score:
    """Piano broken chords, held strings, bass, off-beat guitar, flute tune, drum kit."""
    piano, strings, bass, guitar, flute = range(5)
    s = Score(100, {piano: 0, strings: 48, bass: 33, guitar: 25, flute: 73}, seed=100)
    for bar in range(bars):
        root, chord = BARS[bar % len(BARS)]
        b0 = 4.0 * bar
        for tone in chord:
            s.note(b0, strings, tone, 58, 4)
        broken = [chord[0], chord[1], chord[2], chord[-1] + 12 - 12 * (len(chord) > 3)] * 2
        for i, key in enumerate(broken):
            s.note(b0 + i / 2, piano, key + 12, 66 + 10 * (i % 4 == 0), 0.5)
        for i, key in enumerate((root, root, root + 7, root + 12 - 5)):
            s.note(b0 + i, bass, key - 12 + 12 * (key < 40), 92, 0.9)
        for i in range(4):
            for j, tone in enumerate(chord[:3]):
                s.note(b0 + i + 0.5 + 0.012 * j, guitar, tone, 52, 0.45)
        for i in range(4):
            s.note(b0 + i, DRUMS, KICK if i % 2 == 0 else SNARE, 100 if i % 2 == 0 else 92, 0.25)
            s.note(b0 + i, DRUMS, RIDE if bar % 4 == 3 else CLOSED_HAT, 70, 0.25)
            s.note(b0 + i + 0.5, DRUMS, OPEN_HAT if i == 3 else CLOSED_HAT, 58, 0.25)
    _melody(s, flute, bars, 84)
    return s


def piano(bars: int) -> Score:
    """Solo piano: arpeggios in the left hand under the pedal, the tune in the right."""
    s = Score(84, {0: 0}, seed=101)
    for bar in range(bars):
        root, chord = BARS[bar % len(BARS)]
        b0 = 4.0 * bar
        s.pedal(b0, 0, True)
        s.pedal(b0 + 3.9, 0, False)
        arp = [root - 12, chord[0] - 12, chord[1] - 12, chord[2] - 12, chord[1], chord[2] - 12]
        for i in range(8):
            s.note(b0 + i / 2, 0, arp[i % len(arp)] + 12 * (arp[i % len(arp)] < 36), 54, 0.5)
    _melody(s, 0, bars, 76)
    return s


def strings(bars: int) -> Score:
    """A slow string piece: ensemble chords, cello line, violin tune, harp arpeggios."""
    ensemble, cello, violin, harp = range(4)
    s = Score(72, {ensemble: 48, cello: 42, violin: 40, harp: 46}, seed=102)
    for bar in range(bars):
        root, chord = BARS[bar % len(BARS)]
        b0 = 4.0 * bar
        for tone in chord[:3]:
            s.note(b0, ensemble, tone - 12, 62, 4)
        s.note(b0, cello, root - 12 + 12 * (root < 45), 80, 2)
        s.note(b0 + 2, cello, root - 5 + 12 * (root < 45) - 12 * (root > 47), 72, 2)
        for i, tone in enumerate(chord[:3] + (chord[0] + 12,)):
            s.note(b0 + i / 2, harp, tone + 12, 60, 1.5)
    _melody(s, violin, bars, 80)
    return s


def _melody(s: Score, channel: int, bars: int, velocity: int) -> None:
    phrase = 4.0 * len(BARS)
    for start in np.arange(0.0, 4.0 * bars, phrase):
        for beat, key, held in MELODY:
            if start + beat < 4.0 * bars:
                s.note(start + beat, channel, key, velocity, held)


PIECES = {"band": band, "piano": piano, "strings": strings}


def missing() -> str | None:
    """Why the piece cannot be rendered here, or None."""
    if shutil.which("fluidsynth") is None:
        return "fluidsynth is not installed (bash setup.sh test installs it)"
    if not SOUNDFONT.is_file():
        return f"{SOUNDFONT} is missing (package fluid-soundfont-gm)"
    return None


@functools.lru_cache(maxsize=4)
def music_sampled16(seconds: float = 12.0, channels: int = 2, piece: str = "band") -> np.ndarray:
    """int16 (frames, channels): a piece rendered through the SoundFont and mastered."""
    why = missing()
    if why:
        raise RuntimeError(why)
    n = int(seconds * RATE_HZ)
    bars = 2 + int(seconds * 160 / 240.0)  # enough at any of the pieces' tempi
    with tempfile.TemporaryDirectory(prefix="rtai-music-") as tmp:
        mid, wav = Path(tmp) / "piece.mid", Path(tmp) / "piece.wav"
        mid.write_bytes(PIECES[piece](bars).smf())
        subprocess.run(
            [
                "fluidsynth",
                "-n",
                "-i",
                "-q",
                "-r",
                str(RATE_HZ),
                "-O",
                "float",
                "-T",
                "wav",
                "-F",
                str(wav),
                str(SOUNDFONT),
                str(mid),
            ],  # fmt: skip
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        x, rate = sf.read(wav, dtype="float64", always_2d=True)
    if rate != RATE_HZ or x.shape[0] < n:
        raise RuntimeError(f"fluidsynth rendered {x.shape[0]} frames at {rate} Hz")
    x = x[:n, :2]
    x *= 10 ** (-1 / 20) / np.max(np.abs(x))
    out = _to16(x, np.random.default_rng(48))
    if channels == 1:
        return ((out[:, :1].astype(np.int32) + out[:, 1:]) >> 1).astype(np.int16)
    return out
