"""System test: hands-free echo cancellation on a real audio server (JACK, dummy driver).

B's sound card closes the acoustic loop: whatever B's speaker plays reaches B's
microphone through a simulated room (soft-clipping speaker, 200 ms reverberation,
20 ms delay; src/rtai/testing/room.py) inside the rig's JACK process callback. A talks;
B says nothing. Without echo cancellation A hears its own voice back from B; with it,
A's voice must come back at least 30 dB below A's input.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from rtai.audio.signals import speech
from rtai.processing import webrtc_available
from rtai.testing.jack_rig import RigCard, jack_env
from rtai.testing.peers import wait_in_call
from rtai.testing.ports import free_udp_port
from rtai.testing.room import echo_rig_card, synthetic_rir

pytestmark = pytest.mark.system

RATE = 48000
PERIOD = 480
TALK_S = 8.0
SETTLED_S = 3.0  # the canceller converges on the first seconds of A's talk


def _rtai(*args: str) -> list[str]:
    return [sys.executable, "-m", "rtai", *args]


def _echo_return_db(server: str, b_processing: list[str], tmp: Path) -> tuple[float, float]:
    """Run a call where only A talks; return (A's voice heard back by A relative to A's
    input, in dB over the settled part of the talk; the same before B's canceller had
    time to converge)."""
    card_a = RigCard(server, "rigEchoA")
    card_b = echo_rig_card(server, "rigEchoB", synthetic_rir(RATE, 0.2, 0.02, seed=4))
    procs: list[subprocess.Popen] = []
    said = speech(RATE, TALK_S, 0)
    try:
        env = jack_env(server)
        port = free_udp_port()
        common = ["--frame", str(PERIOD), "--codec", "opus", "--buffer", "20", "-q",
                  "--passphrase", f"rtai echo test {os.getpid()}"]  # fmt: skip
        a_plain = ["--no-aec", "--no-ns", "--no-agc", "--no-vad"]  # A's input, untouched
        listener = subprocess.Popen(
            _rtai("listen", "--bind", "127.0.0.1", "--port", str(port), "--input", "rigEchoB",
                  "--output", "rigEchoB", "--seconds", "40", *b_processing, *common,
                  "--stats-json", str(tmp / "b.json")),
            env=env, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        procs.append(listener)
        time.sleep(1.0)
        caller = subprocess.Popen(
            _rtai("call", f"127.0.0.1:{port}", "--input", "rigEchoA", "--output", "rigEchoA",
                  "--seconds", str(TALK_S + 8), *a_plain, *common,
                  "--stats-json", str(tmp / "a.json")),
            env=env, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        procs.append(caller)
        wait_in_call([tmp / "a.json", tmp / "b.json"], procs, timeout_s=20.0)
        card_a.play(said)
        time.sleep(TALK_S + 0.5)
        assert caller.wait(timeout=20) == 0, caller.stderr.read()
        listener.terminate()
        assert listener.wait(timeout=10) == 0, listener.stderr.read()
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        card_a.close()
        card_b.close()
    rec_start, heard = card_a.recording()
    # A's speaker during A's talk (plus the round trip), against what A said.
    begin = card_a.play_start_frame - rec_start
    said_db = 10 * np.log10(np.mean(said.astype(np.float64) ** 2))

    def level(a_s: float, b_s: float) -> float:
        seg = heard[begin + round(a_s * RATE) : begin + round(b_s * RATE), 0]
        return 10 * np.log10(np.mean(seg.astype(np.float64) ** 2) + 1e-20) - said_db

    return level(SETTLED_S, TALK_S + 0.2), level(0.0, SETTLED_S)


@pytest.mark.skipif(not webrtc_available(), reason="pywebrtc-audio missing")
@pytest.mark.parametrize(
    "b_processing",
    [
        [],  # the device defaults: AEC, NS, AGC and the voice gate
        ["--no-ns", "--no-agc", "--no-vad"],  # the canceller alone, nothing gated
    ],
    ids=["defaults", "aec-only"],
)
def test_a_does_not_hear_itself_back_through_bs_room(jack_server, b_processing, tmp_path):
    settled, _ = _echo_return_db(jack_server.name, b_processing, tmp_path)
    assert settled <= -30.0, f"A hears itself back at {settled:.1f} dB"


def test_without_echo_cancellation_a_hears_itself_back(jack_server, tmp_path):
    # The control: the same loop with B's processing off carries A's voice back loudly,
    # so the test above measures the canceller and not a broken loop.
    settled, _ = _echo_return_db(
        jack_server.name, ["--no-aec", "--no-ns", "--no-agc", "--no-vad"], tmp_path
    )
    assert settled >= -15.0, f"A's echo came back at only {settled:.1f} dB"
