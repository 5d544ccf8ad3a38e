"""Capture processing with the real engines on simulated rooms, and in a real call.

The engines are the real ones (WebRTC's AEC3/NS/AGC through pywebrtc-audio, and
rtai's NumPy fallback); the room is simulated (src/rtai/testing/room.py); the call
test runs two real peers over loopback UDP.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from rtai.audio.signals import speech
from rtai.config import PeerConfig
from rtai.dsp.align import find_lag
from rtai.processing import CapturePipeline, ProcessingOptions, webrtc_available
from rtai.testing.room import echo_of, run_capture, synthetic_rir

RATE = 48000
OUT_LATENCY = 960  # the simulated card plays a block 20 ms after it captured one

needs_webrtc = pytest.mark.skipif(not webrtc_available(), reason="pywebrtc-audio missing")


def _erle_db(engine: str, block: int, rt60_s: float, delay_s: float, seconds: float = 6.0):
    far = speech(RATE, seconds, 0)
    mic = echo_of(far, synthetic_rir(RATE, rt60_s, delay_s, seed=3))
    p = CapturePipeline(RATE, 1, block, ProcessingOptions(aec=True, engine=engine))
    out, _ = run_capture(p, mic, far, OUT_LATENCY)
    d = round(p.delay_s * RATE)
    tail = slice(2 * RATE, len(out) - d)  # after 2 s of single talk
    res = out[d:][tail].astype(np.float64)
    return 10 * math.log10(float(np.sum(mic[tail] ** 2)) / float(np.sum(res**2) + 1e-20))


@needs_webrtc
@pytest.mark.parametrize("block", [480, 128])
def test_webrtc_aec_removes_a_rooms_echo_after_two_seconds(block):
    # 300 ms reverberation, 100 ms acoustic delay, soft-clipping speaker; 128-frame
    # blocks go through the 10 ms re-framer.
    assert _erle_db("webrtc", block, 0.3, 0.1) >= 25.0


@pytest.mark.parametrize("block", [480, 128])
def test_rtais_canceller_removes_a_rooms_echo_after_two_seconds(block):
    # The default engine's canceller, here without pywebrtc-audio ("numpy"): the same
    # room as above.
    assert _erle_db("numpy", block, 0.3, 0.1) >= 30.0


def _near_end_kept_db(engine: str) -> tuple[float, float]:
    """Double talk (near end from 4 s, echo from a room at 6 dB ERL): the near end's
    power over what differs from it in the output, and in the microphone itself."""
    far = speech(RATE, 10.0, 0)
    near = np.concatenate([np.zeros(4 * RATE), speech(RATE, 6.0, 1)]).astype(np.float32)
    mic = (near + echo_of(far, synthetic_rir(RATE, 0.2, 0.05, seed=3))).astype(np.float32)
    p = CapturePipeline(RATE, 1, 480, ProcessingOptions(aec=True, engine=engine))
    out, _ = run_capture(p, mic, far, OUT_LATENCY)
    out = out[round(p.delay_s * RATE) :].astype(np.float64)
    seg = slice(4 * RATE, len(out))
    n = near[: len(out)][seg]

    def sdr(x: np.ndarray) -> float:
        return 10 * math.log10(float(np.sum(n**2)) / float(np.sum((x - n) ** 2)))

    return sdr(out[seg]), sdr(mic[: len(out)][seg])


def test_in_double_talk_the_near_end_comes_through_with_the_echo_taken_out():
    kept, raw = _near_end_kept_db("numpy")
    # measured 20 dB against 7 dB in the microphone (WebRTC's AEC3 here: 5 dB, its
    # suppressor takes near-end speech out with the echo)
    assert kept >= raw + 9.0


def test_without_the_reference_there_is_nothing_to_cancel():
    # The same room with the reference withheld: the canceller cannot help (this is
    # what a misaligned or missing reference costs).
    far = speech(RATE, 5.0, 0)
    mic = echo_of(far, synthetic_rir(RATE, 0.2, 0.03, seed=3))
    p = CapturePipeline(RATE, 1, 480, ProcessingOptions(aec=True, engine="numpy"))
    out, _ = run_capture(p, mic, np.zeros_like(far), OUT_LATENCY)
    tail = slice(2 * RATE, len(out))
    assert 10 * math.log10(np.sum(mic[tail] ** 2) / np.sum(out[tail] ** 2)) < 1.0


@needs_webrtc
def test_the_pipeline_delay_it_reports_is_the_delay_it_adds():
    near = speech(RATE, 4.0, 1)
    p = CapturePipeline(RATE, 1, 128, ProcessingOptions(aec=True, ns=True, agc=True))
    out, _ = run_capture(p, near, np.zeros_like(near), OUT_LATENCY)
    lag = find_lag(near[RATE : 3 * RATE], out) - RATE
    assert abs(lag - p.delay_s * RATE) <= 0.001 * RATE  # within 1 ms


@needs_webrtc
def test_voice_gate_sends_every_first_syllable_and_drops_the_silences():
    talk = speech(RATE, 6.0, 1)
    gaps = [np.zeros(round(s * RATE), dtype=np.float32) for s in (2.0, 3.0, 2.5)]
    near = np.concatenate([gaps[0], talk[: 2 * RATE], gaps[1], talk[2 * RATE :], gaps[2]])
    rng = np.random.default_rng(5)
    mic = near + rng.standard_normal(len(near)) * 10 ** (-60 / 20)
    opts = ProcessingOptions(aec=True, ns=True, agc=True, vad=True)
    p = CapturePipeline(RATE, 1, 480, opts)
    _, sent = run_capture(p, mic, np.zeros_like(near), OUT_LATENCY)
    shifted = np.concatenate([np.zeros(round(p.delay_s * RATE)), near])
    m = len(sent)
    levels = 10 * np.log10(np.mean(shifted[: m * 480].reshape(m, 480) ** 2, axis=1) + 1e-20)
    starts = [k for k in range(31, m) if levels[k] >= -40 and (levels[k - 30 : k] < -55).all()]
    assert len(starts) >= 2  # the two talk spurts (and any long pause inside them)
    assert all(sent[k] for k in starts)  # no first syllable clipped
    assert np.mean(~sent) > 0.4  # the silences (7.5 s of 13.5 s) cost nothing


def test_a_call_with_voice_dtx_sends_nothing_in_the_pauses(start_pair):
    talk = speech(RATE, 1.5, 1)
    quiet = np.zeros(RATE * 2, dtype=np.float32)
    caller_says = np.concatenate([talk, quiet, talk]) + np.float32(0.0)
    cfg_c = PeerConfig(buffer_ms=40, processing=ProcessingOptions(vad=True, engine="numpy"))
    pair = start_pair(np.zeros(RATE * 6, dtype=np.float32), caller_says, cfg_c=cfg_c)
    pair.wait(20)
    c = pair.caller.finished_calls[-1]
    assert c["dtx_skipped"] >= 100  # most of the 2 s pause (200 blocks of 10 ms)
    assert c["sent"] >= 250  # both talk spurts went out
    heard = pair.listener_sink.data()[:, 0]
    for part in (talk[: RATE // 2], talk[RATE:]):  # both spurts arrive, in full
        lag = find_lag(part, heard)
        got = heard[lag : lag + len(part)]
        assert np.corrcoef(part, got)[0, 1] > 0.99
