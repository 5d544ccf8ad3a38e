"""Packet-loss concealment: seamless start, fade to silence, cross-fade back in."""

import numpy as np
import pytest

from rtai.dsp.conceal import Concealer

RATE_HZ = 48000
BLOCK_FRAMES = 64
FADE_MS = 20.0
FADE_FRAMES = round(FADE_MS * RATE_HZ / 1000)  # 960 frames = 15 blocks
XFADE_MS = 1.0
XFADE_FRAMES = round(XFADE_MS * RATE_HZ / 1000)  # 48 frames
SEAM_TOL = 2.0 / FADE_FRAMES  # one sample of fade slope, with margin


def make(channels=1) -> Concealer:
    return Concealer(BLOCK_FRAMES, channels, RATE_HZ, fade_ms=FADE_MS, xfade_ms=XFADE_MS)


def tone(channels=1, start=0, freq_hz=440.0, amp=0.8) -> np.ndarray:
    n = np.arange(start, start + BLOCK_FRAMES)[:, None]
    phase = 2 * np.pi * freq_hz * n / RATE_HZ + np.arange(channels)[None, :]
    return (amp * np.sin(phase)).astype(np.float32)


def out_block(channels=1) -> np.ndarray:
    # Pre-filled with garbage so a test fails if the concealer leaves any of it.
    return np.full((BLOCK_FRAMES, channels), 7.0, dtype=np.float32)


@pytest.mark.parametrize("channels", [1, 2])
def test_good_block_without_a_gap_is_played_unchanged(channels):
    c = make(channels)
    for k in range(3):
        block = tone(channels, start=k * BLOCK_FRAMES)
        out = out_block(channels)
        c.good(block, out)
        np.testing.assert_array_equal(out, block)


@pytest.mark.parametrize("channels", [1, 2])
def test_conceal_starts_at_the_last_good_sample_without_a_jump(channels):
    c = make(channels)
    good = tone(channels)
    c.good(good, out_block(channels))
    out = out_block(channels)
    c.conceal(out)
    assert np.all(np.abs(out[0] - good[-1]) <= SEAM_TOL)
    # Much closer than the jump a plain repeat of the block would make.
    assert np.max(np.abs(good[0] - good[-1])) > 10 * SEAM_TOL


@pytest.mark.parametrize("channels", [1, 2])
def test_consecutive_concealed_blocks_join_without_a_jump(channels):
    c = make(channels)
    c.good(tone(channels), out_block(channels))
    prev = out_block(channels)
    c.conceal(prev)
    for _ in range(FADE_FRAMES // BLOCK_FRAMES + 2):
        out = out_block(channels)
        c.conceal(out)
        assert np.all(np.abs(out[0] - prev[-1]) <= SEAM_TOL)
        prev = out


def test_concealment_fades_linearly_to_exact_silence_after_fade_ms():
    c = make()
    c.good(np.full((BLOCK_FRAMES, 1), 0.5, dtype=np.float32), out_block())
    outs = []
    for _ in range(FADE_FRAMES // BLOCK_FRAMES + 1):
        out = out_block()
        c.conceal(out)
        outs.append(out[:, 0].copy())
    signal = np.concatenate(outs)
    n = np.arange(signal.size)
    expected = 0.5 * np.clip(1 - n / FADE_FRAMES, 0, 1)
    np.testing.assert_allclose(signal, expected, atol=1e-6)
    assert np.all(signal[FADE_FRAMES:] == 0.0)
    assert np.all(signal[: FADE_FRAMES - 1] > 0.0)


def test_long_gap_stays_silent_and_never_replays_old_audio():
    c = make(channels=2)
    c.good(tone(2), out_block(2))
    for k in range(200):
        out = out_block(2)
        c.conceal(out)
        if k * BLOCK_FRAMES >= FADE_FRAMES:
            assert np.all(out == 0.0), f"block {k} of the gap is not silent"


def test_conceal_with_no_history_is_silence():
    c = make(channels=2)
    for _ in range(3):
        out = out_block(2)
        c.conceal(out)
        assert np.all(out == 0.0)


def test_first_good_block_after_a_gap_is_cross_faded_from_the_concealment():
    c = make()
    c.good(np.full((BLOCK_FRAMES, 1), 0.8, dtype=np.float32), out_block())
    concealed = out_block()
    c.conceal(concealed)
    new = np.full((BLOCK_FRAMES, 1), -0.8, dtype=np.float32)
    out = out_block()
    c.good(new, out)
    # It starts where the concealment would have gone on, not at the new block's value...
    assert abs(out[0, 0] - concealed[-1, 0]) <= SEAM_TOL
    # ...moves monotonically towards the new block over xfade_ms...
    assert np.all(np.diff(out[:XFADE_FRAMES, 0]) < 0)
    # ...and is exactly the new block after that.
    np.testing.assert_array_equal(out[XFADE_FRAMES:], new[XFADE_FRAMES:])


def test_cross_fade_after_a_long_gap_rises_from_silence():
    c = make()
    c.good(tone(), out_block())
    for _ in range(FADE_FRAMES // BLOCK_FRAMES + 3):
        c.conceal(out_block())
    new = np.full((BLOCK_FRAMES, 1), 0.6, dtype=np.float32)
    out = out_block()
    c.good(new, out)
    assert out[0, 0] == 0.0
    ramp = 0.6 * np.arange(XFADE_FRAMES) / XFADE_FRAMES
    np.testing.assert_allclose(out[:XFADE_FRAMES, 0], ramp, atol=1e-6)
    np.testing.assert_array_equal(out[XFADE_FRAMES:], new[XFADE_FRAMES:])


def test_only_the_first_good_block_after_a_gap_is_cross_faded():
    c = make()
    c.good(tone(), out_block())
    c.conceal(out_block())
    c.good(tone(start=BLOCK_FRAMES), out_block())
    block = tone(start=2 * BLOCK_FRAMES)
    out = out_block()
    c.good(block, out)
    np.testing.assert_array_equal(out, block)


def test_a_new_gap_conceals_from_the_latest_good_block():
    c = make()
    c.good(np.full((BLOCK_FRAMES, 1), 0.9, dtype=np.float32), out_block())
    c.conceal(out_block())
    c.good(np.full((BLOCK_FRAMES, 1), -0.3, dtype=np.float32), out_block())
    out = out_block()
    c.conceal(out)
    # The fade restarts at full gain from the new block's last sample.
    assert abs(out[0, 0] - (-0.3)) <= SEAM_TOL
