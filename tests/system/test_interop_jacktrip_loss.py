"""System test: JackTrip's redundancy (``-r 2``) revives lost packets, both ways,
between rtai and a real JackTrip, through rtai's own impairing UDP relay.

The rig of test_interop_jacktrip_jack.py (both peers JACK clients of one jackd at
period 128, a RigCard each) with :class:`rtai.netsim.relay.Relay` between them:
rtai calls the relay, which forwards to ``jacktrip -s`` (JackTrip answers the
address its first packet came from: the relay's); and the other way round,
``jacktrip -c`` calls the relay, which forwards to ``rtai listen`` (rtai answers the
relay's upstream socket). The relay drops datagrams at random, each direction (to
JackTrip, to rtai) with its own seed whichever side listens. With ``-r 1`` a lost
datagram is a lost packet, so about as many 64-sample pieces of speech fail to come
out bit-exact; with ``-r 2`` every datagram also carries the packet before it, so a
packet is lost only when two datagrams in a row are (about loss squared).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time

import numpy as np
import pytest

from rtai.jacktrip import protocol as jt
from rtai.netsim.model import ImpairmentConfig
from rtai.netsim.relay import Relay
from rtai.testing.jack_rig import RigCard, jack_env
from rtai.testing.jacktrip_check import block_delays, speech_codes, start_peers
from rtai.testing.peers import stop_processes
from rtai.testing.ports import free_udp_port

pytestmark = [
    pytest.mark.system,
    pytest.mark.skipif(shutil.which("jacktrip") is None, reason="jacktrip is not installed"),
]

RATE = 48000
PERIOD = 128  # JackTrip's usual JACK period, and the shared fixture's
SECONDS = 3.0  # speech each way
LOSS_PCT = 10.0
SEEDS = {"to jacktrip": 1729, "to rtai": 2718}  # the relay's forward and reverse seeds
# Measured over 20 runs of this module (12 alone, 8 beside one or two CPU-bound
# processes; 0-7 xruns a run), the share of loud 64-sample pieces of speech that did
# not come out bit-exact: -r 1 to JackTrip 10.0-11.3 % (median 10.9 %), to rtai
# 12.6-13.5 % (13.0 %; rtai's concealment also touches the piece after a gap);
# -r 2 to JackTrip 2.1-2.4 % (2.3 %), to rtai 1.4-1.9 % (1.65 %). Of ~230 and ~207
# datagrams the relay dropped, 33 and 22 packets came in no datagram with -r 2 (two
# in a row dropped), all but 0-2 at the edges with -r 1; rtai concealed the ones that
# reached it in no datagram, exactly in 36 of 40 runs, -1 to +2 in the others
# (-r 1 runs, not looked into further). The thresholds leave the -r 1 side
# 2.5 points under its lowest share (the seeds fix which packets are lost; what
# varies is which of them carry speech) and the -r 2 side room for an xrun storm (the
# rig's test measured at most 4.5 % of pieces lost to xruns, beside CPU hogs).
# It fails for the right reason (tried on a copy of rtai): reading only the newest
# packet of each datagram, -r 2 left 13.4 % missing to rtai and 207 concealed; sending
# only the newest (padded to size), 11.1 % missing to JackTrip.
# JackTrip as the client (rtai listening behind the relay), measured over 11 runs of
# the module (8 alone, 3 beside one CPU-bound process; 0-7 xruns a run; 2026-11-26):
# -r 1 to JackTrip 10.5-10.6 % (median 10.5 %), to rtai 12.8-13.4 % (13.3 %); -r 2 to
# JackTrip 2.2-2.4 % (2.2 %), to rtai 1.7-1.8 % (1.8 %); 33 and 22 packets in no
# datagram with -r 2, as with rtai calling; rtai concealed exactly those with -r 2 and
# 0-1 fewer with -r 1. The same thresholds hold with the same room. (rtai calling, in
# those runs: all within the figures above, concealed 0-1 fewer with -r 1.) Reading
# only the newest packet, the client case fails too: 13.4 % missing to rtai, 207 concealed.
MIN_MISSING_R1 = 0.075
MAX_MISSING_R2 = 0.06
MAX_LOST_R2 = 0.25  # of the datagrams dropped (measured 0.11-0.14)
CONCEAL_MARGIN = 20


def _talk(jack_server, jacktrip_mode: str, redundancy: int) -> dict:
    """One run: speech both ways through the lossy relay; what each side heard."""
    to_jt = speech_codes(RATE, SECONDS, 0)
    to_rtai = speech_codes(RATE, SECONDS, 2)
    jt_port, rtai_port = free_udp_port(), free_udp_port()
    tag = f"{os.getpid()}l{jacktrip_mode[0]}{redundancy}"
    jt_name, jt_card, rtai_card = f"jt{tag}", f"rigjt{tag}", f"rigrt{tag}"
    common = ["-n", "1", "-b", "16", "-r", str(redundancy)]
    env = jack_env(jack_server.name)
    cards = [RigCard(jack_server.name, n, channels=1, record_seconds=20.0)
             for n in (jt_card, rtai_card)]  # fmt: skip
    card_jt, card_rtai = cards
    # The relay's client calls, its forward address listens: "forward" is the way to
    # the listener. Each direction keeps its seed whichever side listens.
    way = {"forward": "to jacktrip", "reverse": "to rtai"}
    if jacktrip_mode == "client":
        way = {"forward": "to rtai", "reverse": "to jacktrip"}
    delivered: dict[str, list[bytes]] = {"forward": [], "reverse": []}
    relay = Relay(
        ("127.0.0.1", 0),
        ("127.0.0.1", jt_port if jacktrip_mode == "server" else rtai_port),
        ImpairmentConfig(loss_pct=LOSS_PCT, seed=SEEDS[way["forward"]]),
        reverse_config=ImpairmentConfig(loss_pct=LOSS_PCT, seed=SEEDS[way["reverse"]]),
        tap=lambda direction, data: delivered[direction].append(data),
    )
    relay_port = relay.listen_address[1]
    if jacktrip_mode == "server":
        jt_cmd = ["jacktrip", "-s", "-B", str(jt_port)]
        rtai_mode = ["call", f"127.0.0.1:{relay_port}", "--protocol", "jacktrip",
                     "-B", str(rtai_port)]  # fmt: skip
    else:
        jt_cmd = ["jacktrip", "-c", "127.0.0.1", "-P", str(relay_port), "-B", str(jt_port)]
        rtai_mode = ["listen", "--port", str(rtai_port), "--protocol", "jacktrip"]
    jt_cmd += [*common, "-D", "-J", jt_name, "-q", "8"]
    rtai_args = [sys.executable, "-m", "rtai", *rtai_mode, *common, "-F", str(PERIOD),
                 "--insecure", "--input", rtai_card, "--output", rtai_card,
                 "--seconds", "30", "--buffer", "20"]  # fmt: skip
    procs: list[subprocess.Popen] = []
    try:
        relay.start()
        start_peers(procs, jacktrip_mode, jt_cmd, rtai_args, env, card_jt, jt_name, rtai_port, 1)
        time.sleep(1.5)  # both ways running: JackTrip's queue and rtai's buffer settle
        # JackTrip writes 16 bits as round(x * 32767), rtai as round(x * 32768).
        card_jt.play(to_rtai.astype(np.float32) / np.float32(32767.0))
        card_rtai.play(to_jt.astype(np.float32) / np.float32(32768.0))
        time.sleep(SECONDS + 1.0)
        xruns = card_jt.xruns
        _, heard_by_jt = card_jt.recording()
        _, heard_by_rtai = card_rtai.recording()
        rtai, jacktrip = sorted(procs, key=lambda p: p.args[0] != sys.executable)
        assert rtai.poll() is None, rtai.stderr.read()
        stop_processes([jacktrip])
        assert rtai.wait(timeout=15) == 0, rtai.stderr.read()
        report = rtai.stderr.read()
        stats = relay.stats()
    finally:
        relay.stop()
        stop_processes(procs)
        for card in cards:
            card.close()
    assert "exit packet" in report, report
    missing = {}
    for direction, said, heard, card_from, card_to in (
        ("to jacktrip", to_jt, heard_by_jt, card_rtai, card_jt),
        ("to rtai", to_rtai, heard_by_rtai, card_jt, card_rtai),
    ):
        codes = np.rint(heard[:, 0].astype(np.float64) * 32768.0).astype(np.int32)
        offset = card_from.play_start_frame - card_to.rec_start_frame
        blocks = block_delays(said.astype(np.int32), codes, offset, int(0.2 * RATE))
        missing[direction] = sum(d is None for _, d in blocks) / len(blocks)
    unrecoverable = {way[k]: _unrecoverable(delivered[k]) for k in way}
    counters = {way["forward"]: stats.forward, way["reverse"]: stats.reverse}
    dropped = {d: c.dropped_loss for d, c in counters.items()}
    offered = {d: c.offered for d, c in counters.items()}
    return {"missing": missing, "xruns": xruns, "report": report, "dropped": dropped,
            "offered": offered, "unrecoverable": unrecoverable}  # fmt: skip


def _unrecoverable(datagrams: list[bytes]) -> int:
    """Packets that came through the relay in no datagram at all (neither as the newest
    packet nor as a redundant copy), between the first and the last that did."""
    seen: set[int] = set()
    ext, last = 0, None
    for data in datagrams:
        if jt.is_exit_packet(data):
            continue
        for pkt in reversed(jt.parse_datagram(data)):
            seq = pkt.header.seq
            if last is not None:
                ext += (seq - last + 0x8000) % 0x10000 - 0x8000
            last = seq
            seen.add(ext)
    return (max(seen) - min(seen) + 1 - len(seen)) if seen else 0


def _concealed(report: str) -> tuple[int, int]:
    m = re.search(r"played (\d+), concealed (\d+)", report)
    assert m, report
    return int(m.group(1)), int(m.group(2))


@pytest.mark.parametrize("redundancy", [1, 2])
@pytest.mark.parametrize("jacktrip_mode", ["server", "client"])
def test_redundancy_revives_lost_packets_both_ways(jack_server, jacktrip_mode, redundancy):
    """10 % of datagrams lost each way: with -r 1 the speech shows it, with -r 2 it
    (nearly) does not, in what JackTrip plays and in what rtai plays and counts."""
    r = _talk(jack_server, jacktrip_mode, redundancy)
    played, concealed = _concealed(r["report"])
    dropped, offered = r["dropped"], r["offered"]
    print(f"jacktrip {jacktrip_mode}, -r {redundancy}: missing to jacktrip "
          f"{r['missing']['to jacktrip']:.1%}, to rtai {r['missing']['to rtai']:.1%}; "
          f"{r['xruns']} xruns; rtai played {played}, concealed {concealed}; relay lost "
          f"{dropped['to jacktrip']} of {offered['to jacktrip']} to jacktrip, "
          f"{dropped['to rtai']} of {offered['to rtai']} to rtai; "
          f"unrecoverable {r['unrecoverable']}")  # fmt: skip
    what = (jacktrip_mode, redundancy, r["missing"], r["unrecoverable"], dropped, r["xruns"],
            r["report"])  # fmt: skip
    for direction in ("to jacktrip", "to rtai"):
        assert dropped[direction] >= 0.07 * offered[direction], what  # the relay lost some
        lost, missing = r["unrecoverable"][direction], r["missing"][direction]
        if redundancy == 1:
            assert lost >= 0.9 * dropped[direction], what
            assert missing >= MIN_MISSING_R1, what
        else:  # the copies came through: only two datagrams lost in a row lose a packet
            assert lost <= MAX_LOST_R2 * dropped[direction], what
            assert missing <= MAX_MISSING_R2, what
    # rtai conceals the packets that reached it in no datagram (give or take a few at
    # the ends of the session): with -r 2 about 1 in 10 of those the relay dropped.
    assert abs(concealed - r["unrecoverable"]["to rtai"]) <= CONCEAL_MARGIN, what
