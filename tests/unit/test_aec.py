"""rtai's echo canceller (src/rtai/dsp/aec.py) on synthetic paths: pure NumPy, 16 kHz."""

from __future__ import annotations

import math

import numpy as np

from rtai.dsp.aec import EchoCanceller
from rtai.testing.room import echo_of, synthetic_rir

RATE = 16000
F = RATE // 100  # 10 ms frames


def _run(c: EchoCanceller, mic: np.ndarray, far: np.ndarray) -> np.ndarray:
    out = np.zeros(len(mic))
    for i in range(0, len(mic) - F + 1, F):
        out[i : i + F] = c.process(mic[i : i + F], far[i : i + F])
    return out


def _db(num: np.ndarray, den: np.ndarray) -> float:
    return 10 * math.log10(float(np.sum(num**2)) / (float(np.sum(den**2)) + 1e-30))


def _far(seconds: float, seed: int = 1, level: float = 0.1) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(round(seconds * RATE)) * level


def test_the_filter_alone_learns_a_linear_room():
    far = _far(6.0)
    mic = echo_of(far, synthetic_rir(RATE, 0.15, 0.03, seed=2), drive=1e-3)
    c = EchoCanceller(F, 30, nonlinear=False, suppress=False)
    out = _run(c, mic, far)
    tail = slice(3 * RATE, len(far))
    assert _db(mic[tail], out[tail]) >= 35.0


def test_the_delay_finder_moves_the_prior_to_the_direct_sound():
    far = _far(3.0)
    mic = echo_of(far, synthetic_rir(RATE, 0.1, 0.12, seed=2), drive=1e-3)
    c = EchoCanceller(F, 30, nonlinear=False, suppress=False)
    _run(c, mic, far)
    assert c.delays_found >= 1
    assert abs(c.delay_partitions - 12) <= 1  # 120 ms of 10 ms partitions


def test_the_loudspeaker_model_takes_out_what_compression_adds():
    far = _far(8.0, level=0.3)  # loud: tanh(2x)/2 compresses the peaks
    mic = echo_of(far, synthetic_rir(RATE, 0.1, 0.02, seed=2), drive=2.0)
    tail = slice(5 * RATE, len(far))
    linear = _run(EchoCanceller(F, 20, nonlinear=False, suppress=False), mic, far)
    c = EchoCanceller(F, 20, nonlinear=True, suppress=False)
    hammerstein = _run(c, mic, far)
    assert _db(mic[tail], hammerstein[tail]) >= _db(mic[tail], linear[tail]) + 6.0
    assert c.a[0] < 0.0  # compression: the cubic term subtracts


def test_double_talk_leaves_the_near_end_and_takes_the_echo_out():
    far = _far(8.0)
    echo = echo_of(far, synthetic_rir(RATE, 0.15, 0.03, seed=2), drive=1e-3)
    near = np.zeros_like(far)
    near[4 * RATE :] = _far(4.0, seed=9, level=0.05)  # the near end talks from 4 s
    c = EchoCanceller(F, 30)
    out = _run(c, near + echo, far)[F:]  # the suppressor delays by one frame
    dt = slice(5 * RATE, len(far) - F)
    n = near[: len(out)]
    assert _db(n[dt], out[dt] - n[dt]) >= 20.0  # near end intact, echo gone under it
    assert abs(_db(out[dt], n[dt])) <= 1.0  # and not attenuated
    single = slice(3 * RATE, 4 * RATE - F)
    assert _db(echo[single], out[single]) >= 40.0  # single talk: suppressed as well


def test_with_the_far_end_silent_the_near_end_passes_one_frame_late():
    near = _far(1.0, seed=4)
    c = EchoCanceller(F, 10)
    out = _run(c, near, np.zeros_like(near))
    assert np.allclose(out[F:], near[:-F], atol=1e-9)


def test_a_moved_echo_path_is_learned_again():
    far = _far(10.0)
    before = echo_of(far, synthetic_rir(RATE, 0.1, 0.03, seed=2), drive=1e-3)
    after = echo_of(far, synthetic_rir(RATE, 0.1, 0.045, seed=5), drive=1e-3)
    mic = np.concatenate([before[: 5 * RATE], after[5 * RATE :]])
    c = EchoCanceller(F, 20, suppress=False)
    out = _run(c, mic, far)
    assert c.restarts >= 1  # subtracting the old path made the error louder
    assert _db(mic[4 * RATE : 5 * RATE], out[4 * RATE : 5 * RATE]) >= 30.0
    assert _db(mic[8 * RATE :], out[8 * RATE :]) >= 30.0  # within 3 s of the move


def _speech_room(seconds: float, near_from_s: float | None, drive: float = 1e-3):
    """Far-end speech through an office-like room; near-end speech (another voice,
    about 6 dB above the echo) from ``near_from_s`` on."""
    from rtai.audio.signals import speech

    far = speech(RATE, seconds, 0).astype(np.float64)
    echo = echo_of(far, synthetic_rir(RATE, 0.2, 0.03, seed=2), drive=drive)
    near = np.zeros_like(far)
    if near_from_s is not None:
        start = round(near_from_s * RATE)
        near[start:] = speech(RATE, seconds - near_from_s, 1)[: len(far) - start]
    return far, echo, near


def test_replaying_earlier_frames_converges_faster_on_speech():
    far, echo, _ = _speech_room(6.0, None)
    span = slice(2 * RATE, 6 * RATE)
    erle = {}
    for replays in (0, 2):  # none, and the default
        c = EchoCanceller(F, 30, nonlinear=False, suppress=False, replays=replays)
        erle[replays] = _db(echo[span], _run(c, echo, far)[span])
    assert erle[2] >= 36.0
    assert erle[2] >= erle[0] + 8.0


def test_double_talk_does_not_throw_the_converged_filter_off():
    far, echo, near = _speech_room(12.0, 6.0)
    c = EchoCanceller(F, 30, nonlinear=False, suppress=False)
    residual = _run(c, near + echo, far) - near  # the echo the filter left
    single, double = slice(3 * RATE, 6 * RATE), slice(6 * RATE, 12 * RATE)
    assert _db(near[double], echo[double]) >= 5.0  # the near end is the louder
    before = _db(echo[single], residual[single])
    during = _db(echo[double], residual[double])
    assert before >= 35.0
    assert during >= 30.0
    assert during >= before - 8.0


def test_double_talk_keeps_the_near_end_whole_behind_the_suppressor():
    far, echo, near = _speech_room(12.0, 6.0, drive=2.0)
    out = _run(EchoCanceller(F, 30), near + echo, far)[F:]  # one frame late
    dt = slice(6 * RATE, 12 * RATE - F)
    n = near[: len(out)]
    assert abs(_db(out[dt], n[dt])) <= 1.0  # not attenuated
    assert _db(n[dt], out[dt] - n[dt]) >= 15.0  # and what differs from it is small


def test_a_moved_echo_path_is_learned_again_on_speech():
    from rtai.audio.signals import speech

    far = speech(RATE, 12.0, 0).astype(np.float64)
    before = echo_of(far, synthetic_rir(RATE, 0.2, 0.03, seed=2))
    after = echo_of(far, synthetic_rir(RATE, 0.3, 0.06, seed=5))  # 30 ms further away
    mic = np.concatenate([before[: 6 * RATE], after[6 * RATE :]])
    c = EchoCanceller(F, 30)
    out = _run(c, mic, far)
    assert c.restarts == 1  # found through speech's pauses and onsets, and only once
    assert _db(mic[4 * RATE : 6 * RATE], out[4 * RATE : 6 * RATE]) >= 30.0
    assert _db(mic[8 * RATE :], out[8 * RATE :]) >= 30.0  # from 2 s after the move
