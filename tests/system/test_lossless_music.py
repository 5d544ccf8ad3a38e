"""rtai lossless on music played by recorded instruments (FluidSynth through the Fluid R3
SoundFont, bench/_sampled_music.py): every block of every piece comes back bit-exact
through the real encoder and decoder objects, each packet decoded on its own, at every
block size, mono and stereo; and the score is a well-formed MIDI file."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import numpy as np
import pytest

from rtai.codecs import lossless

BENCH = Path(__file__).resolve().parents[2] / "bench"
if str(BENCH) not in sys.path:
    sys.path.insert(0, str(BENCH))
sm = importlib.import_module("_sampled_music")


@pytest.mark.parametrize("piece", sorted(sm.PIECES))
def test_score_is_a_well_formed_midi_file(piece: str) -> None:
    data = sm.PIECES[piece](4).smf()
    assert data[:4] == b"MThd" and int.from_bytes(data[4:8], "big") == 6
    assert int.from_bytes(data[8:10], "big") == 0  # format 0: one track
    assert data[14:18] == b"MTrk"
    assert int.from_bytes(data[18:22], "big") == len(data) - 22
    assert data.endswith(b"\xff\x2f\x00")
    ons = data.count(b"\x90") + sum(data.count(bytes([0x90 | c])) for c in range(1, 10))
    assert ons > 20


@pytest.fixture(scope="module")
def pieces() -> dict[tuple[str, int], np.ndarray]:
    why = sm.missing()
    if why:
        pytest.fail(f"the music cannot be rendered: {why}")
    return {(p, ch): sm.music_sampled16(2.0, ch, p) for p in sm.PIECES for ch in (1, 2)}


@pytest.mark.parametrize("piece", sorted(sm.PIECES))
def test_rendered_music_is_loud_real_audio(pieces, piece: str) -> None:
    x = pieces[(piece, 2)]
    assert x.shape == (96000, 2) and x.dtype == np.int16
    peak = np.abs(x.astype(np.int32)).max()
    assert 28000 < peak <= 29300  # -1 dBFS peak
    assert not np.array_equal(x[:, 0], x[:, 1])  # a stereo render, not a copy
    assert np.array_equal(x, sm.music_sampled16(2.0, 2, piece))  # deterministic


@pytest.mark.parametrize("frames", [64, 128, 256, 480, 960])
@pytest.mark.parametrize("channels", [1, 2])
def test_lossless_round_trip_on_instrument_music(pieces, frames: int, channels: int) -> None:
    enc = lossless.LosslessEncoder(48000, channels, frames)
    for piece in sorted(sm.PIECES):
        x = pieces[(piece, channels)]
        floats = x.astype(np.float32) / 32768.0
        payloads = [
            enc.encode(floats[i : i + frames]) for i in range(0, len(x) - frames + 1, frames)
        ]
        # each packet on its own: a fresh decoder per packet, in reverse order
        for k in reversed(range(len(payloads))):
            out = lossless.LosslessDecoder(48000, channels, frames).decode(payloads[k])
            want = floats[k * frames : (k + 1) * frames]
            assert np.array_equal(out, want), (piece, k)
        bits = 8 * sum(map(len, payloads)) / (len(payloads) * frames * channels)
        assert bits < 14.0, (piece, bits)  # compressed, well under 16-bit PCM
