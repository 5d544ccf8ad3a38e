"""The talk controls at the real edges: a pseudo-terminal for the keys, and the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

from rtai.processing import TalkControl, webrtc_available
from rtai.talk import KeyReader
from rtai.testing.ports import free_udp_port


def _wait_for(pred, timeout_s: float = 2.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.01)
    return False


def test_keys_typed_on_a_terminal_mute_hold_and_lock_push_to_talk():
    master, slave = os.openpty()
    talk = TalkControl(ptt=True)
    with os.fdopen(slave, "r") as tty_in:
        keys = KeyReader(talk, tty_in)
        assert keys.start()
        try:
            os.write(master, b" ")
            assert _wait_for(lambda: talk.open)
            # Held: the terminal's auto-repeat, every 40 ms for 1.5 s, keeps it open.
            closed = 0
            for _ in range(38):
                os.write(master, b" ")
                time.sleep(0.04)
                closed += not talk.open
            assert closed == 0 and talk.state() == "talk"
            # Released: no more presses, and talking closes by itself.
            assert _wait_for(lambda: not talk.open)
            assert talk.state() == "ptt"
            os.write(master, b"t")
            assert _wait_for(lambda: talk.state() == "locked")
            time.sleep(1.0)
            assert talk.open  # locked: no key needed
            os.write(master, b"m")
            assert _wait_for(lambda: talk.muted and not talk.open)
            os.write(master, b"mt")
            assert _wait_for(lambda: not talk.muted and not talk.talking)
        finally:
            keys.stop()
    os.close(master)


def _rtai(*args: str) -> list[str]:
    return [sys.executable, "-m", "rtai", *args]


def test_processing_options_reach_the_call_and_its_statistics(tmp_path):
    port = free_udp_port()
    secret = ["--passphrase", f"rtai talk test {os.getpid()}"]
    listener = subprocess.Popen(
        _rtai("listen", "--bind", "127.0.0.1", "--port", str(port), "--input", "silence",
              "--output", "null", "--seconds", "12", "-q", *secret),
        stdin=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        time.sleep(0.5)
        stats = tmp_path / "c.json"
        caller = subprocess.run(
            _rtai("call", f"127.0.0.1:{port}", "--input", "speech", "--output", "null",
                  "--seconds", "3", "--aec", "--ns", "--agc", "--vad", "--ptt",
                  "--stats-json", str(stats), *secret),
            stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=30,
        )  # fmt: skip
    finally:
        listener.terminate()
        listener.wait(timeout=10)
    assert caller.returncode == 0, caller.stderr
    # No terminal: push-to-talk cannot be keyed, so it says so and talks all the time.
    assert "--ptt needs a terminal" in caller.stderr
    rows = [json.loads(line) for line in stats.read_text().splitlines()]
    in_call = [r for r in rows if r.get("call")]
    assert in_call, rows
    last = in_call[-1]
    assert last["talk"] == "open"
    assert last["processing"] == ("rtai" if webrtc_available() else "numpy")
    assert last["sent"] > 50  # speech went out
    assert "vad_silent" in last and "aec_realigned" in last
