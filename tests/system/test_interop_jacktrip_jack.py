"""System test: rtai and a real JackTrip on one JACK clock, at JackTrip's usual 128 frames.

Both peers are JACK clients of one private jackd (dummy driver, period 128): JackTrip
with its own ports, rtai through PortAudio's JACK host API on a rig card it opens
with ``--input CARD --output CARD``. The rig plays speech into both peers' microphones
and records both speakers, so both sides are paced by the same clock and nothing
slips: every 16-bit sample must arrive unchanged, both ways. (The file-driven test,
test_interop_jacktrip.py, runs rtai on the monotonic clock, which the dummy driver
drifts from by up to 1 % at small periods; that test needs period 512.)
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time

import numpy as np
import pytest

from rtai.testing.jack_rig import RigCard, jack_env
from rtai.testing.jacktrip_check import (
    block_delays,
    exact_windows,
    longest_exact_run,
    speech_codes,
    start_peers,
)
from rtai.testing.peers import stop_processes
from rtai.testing.ports import free_udp_port

pytestmark = [
    pytest.mark.system,
    pytest.mark.skipif(shutil.which("jacktrip") is None, reason="jacktrip is not installed"),
]

RATE = 48000
PERIOD = 128  # JackTrip's usual JACK period, and the shared fixture's
SECONDS = 3.0  # speech each way
WINDOW_S = 0.25
SETTLE_S = 0.0  # the speech starts after both queues have run for a second or more
SEARCH_BACK_S = 0.05  # an xrun can shorten the delay by a period or two
XRUN_BEFORE_S = 0.4  # JackTrip's queue trims or pads a packet up to 0.2 s after an xrun
XRUN_AFTER_S = 0.1
# What the JACK clock cannot fix here: this 2-core VM stalls the dummy driver's cycles
# now and then (periods <= 256; at times every 0.51 s, a jackd with no client but a
# watcher included), and each xrun loses or repeats a period of audio on the way
# (JackTrip's queue then trims or pads a packet, up to 0.2 s later). Measured over 562
# channel-directions of 41 runs (30 alone, 11 beside one or two CPU-bound processes;
# 0-17 xruns in a talk alone, up to 48 under load):
# * with no xrun near the talk (66), 60 were identical all 3 s, the rest >= 1.19 s;
# * 64-sample pieces of speech found bit-exact, each at its own delay: min 95.5 % (91 %
#   once, by hand), median 99.9 %; one sample changed on the way (a conversion off by
#   one code) loses its piece, so a wrong conversion would leave next to none;
# * those delays differ by whole JACK periods only (lost or repeated periods): always;
# * quarter-second windows exact at their own delay: min 36 %, median 90 %, as the
#   stalls come: so every window that is not exact must hold a slip (a change of delay
#   or a piece not found) or have had an xrun on its way (704 missed windows in the
#   last 25 runs: all so);
# * the longest identical run: min 0.33 s, median 2.1 s; 0.1 s (4,800 identical
#   samples) does not happen by chance.
MIN_BLOCKS = 0.8
MIN_RUN = RATE // 10


def _slipped(blocks: list[tuple[int, int | None]], t_s: float) -> bool:
    """Whether the pieces of speech in and around the window at ``t_s`` show a slip:
    one not found, or two at different delays (the margin covers quiet edges)."""
    lo, hi = (t_s - 0.1) * RATE, (t_s + WINDOW_S + 0.1) * RATE
    delays = {d for p, d in blocks if lo <= p <= hi}
    return None in delays or len(delays) > 1


def _xrun_on_the_way(t_s: float, delay_s: float, xrun_s: np.ndarray) -> bool:
    """Whether an xrun fell while the window at ``t_s`` (seconds after the speech
    entered the sender's microphone) was on its way, or shortly before."""
    lo, hi = t_s - XRUN_BEFORE_S, t_s + WINDOW_S + delay_s + XRUN_AFTER_S
    return bool(np.any((xrun_s >= lo) & (xrun_s <= hi)))


def _events(times_s: list[float]) -> np.ndarray:
    """Each client hears of each xrun: one time per xrun (within 10 ms is the same)."""
    out: list[float] = []
    for t in sorted(times_s):
        if not out or t - out[-1] > 0.01:
            out.append(t)
    return np.array(out)


@pytest.mark.parametrize(
    "jacktrip_mode, channels, redundancy, frame",
    [
        ("server", 1, 1, PERIOD),
        ("client", 1, 1, PERIOD),
        ("server", 2, 1, PERIOD),
        ("client", 2, 2, PERIOD),
        ("server", 1, 1, 2 * PERIOD),  # rtai's blocks twice JackTrip's packets (re-cut)
    ],
)
def test_jacktrip_and_rtai_on_one_jack_clock_are_sample_exact(
    jack_server, jacktrip_mode, channels, redundancy, frame
):
    """16-bit speech both ways, a different talker on each channel (a mix-up shows)."""
    to_jt = np.stack([speech_codes(RATE, SECONDS, c) for c in range(channels)], axis=1)
    to_rtai = np.stack([speech_codes(RATE, SECONDS, c + 2) for c in range(channels)], axis=1)
    jt_port, rtai_port = free_udp_port(), free_udp_port()
    tag = f"{os.getpid()}{jacktrip_mode[0]}{channels}{redundancy}{frame}"
    jt_name, jt_card, rtai_card = f"jt{tag}", f"rigjt{tag}", f"rigrt{tag}"
    if jacktrip_mode == "server":
        jt_cmd = ["jacktrip", "-s", "-B", str(jt_port)]
        rtai_mode = ["call", f"127.0.0.1:{jt_port}", "--protocol", "jacktrip", "-B", str(rtai_port)]
    else:
        jt_cmd = ["jacktrip", "-c", "127.0.0.1", "-P", str(rtai_port), "-B", str(jt_port)]
        rtai_mode = ["listen", "--port", str(rtai_port), "--protocol", "jacktrip"]
    common = ["-n", str(channels), "-b", "16", "-r", str(redundancy)]
    jt_cmd += [*common, "-D", "-J", jt_name, "-q", "8"]
    env = jack_env(jack_server.name)
    # rtai's card must exist before rtai starts: PortAudio lists devices as it starts.
    cards = [RigCard(jack_server.name, n, channels=channels, record_seconds=20.0)
             for n in (jt_card, rtai_card)]  # fmt: skip
    card_jt, card_rtai = cards
    rtai_args = [sys.executable, "-m", "rtai", *rtai_mode, *common, "-F", str(frame),
                 "--insecure", "--input", rtai_card, "--output", rtai_card,
                 "--seconds", "30", "--buffer", "20"]  # fmt: skip
    procs: list[subprocess.Popen] = []
    try:
        start_peers(
            procs, jacktrip_mode, jt_cmd, rtai_args, env, card_jt, jt_name, rtai_port, channels
        )
        time.sleep(1.5)  # both ways running: JackTrip's queue and rtai's buffer settle
        # JackTrip writes 16 bits as round(x * 32767) and reads v / 32768: inject
        # k / 32767 so that it sends k. rtai sends round(x * 32768): inject k / 32768.
        card_jt.play(to_rtai.astype(np.float32) / np.float32(32767.0))
        card_rtai.play(to_jt.astype(np.float32) / np.float32(32768.0))
        time.sleep(SECONDS + 1.0)
        xrun_frames = list(card_jt.xrun_frames)  # every client hears of every xrun
        _, heard_by_jt = card_jt.recording()
        _, heard_by_rtai = card_rtai.recording()
        # JackTrip stops first and sends its exit packet: rtai must end on it, cleanly.
        rtai, jacktrip = sorted(procs, key=lambda p: p.args[0] != sys.executable)
        assert rtai.poll() is None, rtai.stderr.read()
        stop_processes([jacktrip])
        assert rtai.wait(timeout=15) == 0, rtai.stderr.read()
        report = rtai.stderr.read()
    finally:
        stop_processes(procs)
        for card in cards:
            card.close()
    assert "exit packet" in report, report
    print(report.strip().splitlines()[-1])
    for direction, said, heard, card_from, card_to in (
        ("to jacktrip", to_jt, heard_by_jt, card_rtai, card_jt),
        ("to rtai", to_rtai, heard_by_rtai, card_jt, card_rtai),
    ):
        codes = np.rint(heard.astype(np.float64) * 32768.0).astype(np.int32)
        # xruns as seconds after the speech entered the sender's microphone
        xrun_s = _events([(f - card_from.play_start_frame) / RATE for f in xrun_frames])
        for c in range(channels):
            sent = said[:, c].astype(np.int32)
            run, lag = longest_exact_run(sent, codes[:, c])
            delay_s = (card_to.rec_start_frame + lag - card_from.play_start_frame) / RATE
            windows = exact_windows(sent, codes[:, c], RATE, WINDOW_S, SETTLE_S, SEARCH_BACK_S)
            share = sum(ok for _, ok in windows) / len(windows)
            offset = card_from.play_start_frame - card_to.rec_start_frame
            blocks = block_delays(sent, codes[:, c], offset, int(0.2 * RATE))
            found = [d for _, d in blocks if d is not None]
            changes = sum(a != b for a, b in zip(found, found[1:], strict=False))
            xruns = int(np.sum((xrun_s >= -1.0) & (xrun_s <= SECONDS + delay_s)))
            unexplained = [
                t for t, ok in windows
                if not ok and not _slipped(blocks, t) and not _xrun_on_the_way(t, delay_s, xrun_s)
            ]  # fmt: skip
            print(f"jacktrip {jacktrip_mode}, {channels} ch, -r {redundancy}, rtai -F {frame}, "
                  f"{direction}, ch {c + 1}: longest exact run {run} samples, "
                  f"{share:.0%} of {len(windows)} windows exact; {len(found)} of {len(blocks)} "
                  f"blocks exact, delays {sorted(set(found))}, {changes} changes; "
                  f"{xruns} xruns; {sum(not ok for _, ok in windows)} windows missed, "
                  f"{len(unexplained)} unexplained")  # fmt: skip
            what = (direction, c, xruns, report)
            assert len(found) >= MIN_BLOCKS * len(blocks), (len(found), len(blocks), what)
            assert all((d - found[0]) % PERIOD == 0 for d in found), (sorted(set(found)), what)
            assert not unexplained, (unexplained, what)
            assert run >= MIN_RUN, (run, what)
