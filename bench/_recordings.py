"""Licence-clean music recordings for the lossless benchmark (``data/recordings``).

Real material beside the generated pieces: each file as its publisher distributes it
(FLAC, 44.1 kHz, stereo, 16 or 24-bit), its licence and source in
``data/recordings/LICENCE.md``. :func:`load` checks each file's SHA-256 against the
record there, so a changed or truncated file is refused instead of measured.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

DIR = Path(__file__).resolve().parents[1] / "data" / "recordings"


@dataclass(frozen=True)
class Recording:
    name: str  # as the benchmark's tables show it
    file: str
    sha256: str
    depth: int  # bits per sample, as published


RECORDINGS = (
    Recording(
        "Arovane: beat (electronic)",
        "arovane_beat_a.flac",
        "2060f1c91f9a2669b336159a3c18b2f26ce75077412ffe4e594499292960bb75",
        24,
    ),
    Recording(
        "guitar chord (acoustic)",
        "guit_em9.flac",
        "e6dbbdc5aef03fada9cbd84d9ef000472c6954db9badcf5721969c515d46c2f1",
        16,
    ),
    Recording(
        "Garzul: loop (electronic)",
        "loop_garzul.flac",
        "bc04e06c84a4b6535b8f7bdb51c5b09afe5350421bf16660454e6d370d9ab849",
        16,
    ),
    Recording(
        "godspine: percussion loop",
        "loop_compus.flac",
        "76d2156582500c496a5c168ab2a1ddd7f3df9534ca476eb760375c30f709ed1d",
        16,
    ),
    Recording(
        "Kevin MacLeod (produced music)",
        "macleod_gs.flac",
        "c080e589eba0b1e14acf86e90d0f04018001404941c7927a03050101a18ba548",
        16,
    ),
)


def load(rec: Recording, channels: int = 2) -> tuple[np.ndarray, int]:
    """(int64 samples shaped (frames, channels) on the recording's own ``depth``-bit grid,
    sample rate). Mono is the mid channel, ``(L + R) >> 1``, as a mono sender would
    mix it. A file whose SHA-256 is not the recorded one is refused (ValueError)."""
    path = DIR / rec.file
    data = path.read_bytes()
    if hashlib.sha256(data).hexdigest() != rec.sha256:
        raise ValueError(f"{path}: not the recording data/recordings/LICENCE.md lists")
    x, rate = sf.read(path, dtype="int32", always_2d=True)
    x = x.astype(np.int64) >> (32 - rec.depth)
    if channels == 1:
        x = (x[:, :1] + x[:, 1:2]) >> 1
    return x, int(rate)
