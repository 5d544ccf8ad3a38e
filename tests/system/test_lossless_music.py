"""rtai lossless on music played by recorded instruments (FluidSynth through the Fluid R3
SoundFont, bench/_sampled_music.py) and on the licence-clean recordings of
data/recordings (bench/_recordings.py): every block comes back bit-exact through the
real encoder and decoder objects, each packet decoded on its own, at every block size,
mono and stereo, 16 and 24-bit; the score is a well-formed MIDI file, and a recording
that is not the one listed is refused."""

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
recs = importlib.import_module("_recordings")


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


@pytest.mark.parametrize("rec", recs.RECORDINGS, ids=lambda r: r.file)
@pytest.mark.parametrize("channels", [1, 2])
def test_lossless_round_trip_on_recordings(rec, channels: int) -> None:
    x, rate = recs.load(rec, channels)
    middle = len(x) // 2
    x = x[middle : middle + rate]  # one second from the middle
    assert np.abs(x).max() > 1 << (rec.depth - 4)  # loud real audio, on its own grid
    floats = (x / float(1 << (rec.depth - 1))).astype(np.float32)  # exact in float32
    for frames in (128, 441, 960):
        enc = lossless.LosslessEncoder(rate, channels, frames)
        payloads = [
            enc.encode(floats[i : i + frames]) for i in range(0, len(x) - frames + 1, frames)
        ]
        for k in reversed(range(len(payloads))):
            out = lossless.LosslessDecoder(rate, channels, frames).decode(payloads[k])
            assert np.array_equal(out, floats[k * frames : (k + 1) * frames]), (frames, k)
        bits = 8 * sum(map(len, payloads)) / (len(payloads) * frames * channels)
        assert bits < 0.8 * rec.depth, (frames, bits)  # compressed on its own depth


def test_a_recording_that_is_not_the_listed_one_is_refused(tmp_path, monkeypatch) -> None:
    rec = recs.RECORDINGS[1]
    data = bytearray((recs.DIR / rec.file).read_bytes())
    data[len(data) // 2] ^= 1
    (tmp_path / rec.file).write_bytes(bytes(data))
    monkeypatch.setattr(recs, "DIR", tmp_path)
    with pytest.raises(ValueError, match="not the recording"):
        recs.load(rec)
