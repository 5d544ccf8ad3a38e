"""``rtai demo``: a whole call on one machine, no sound card needed (a face).

Two peers, a listener and a caller, talk over loopback UDP through the network
simulator, each "speaking" generated speech (espeak-ng when installed, else a
synthetic voice) into a clocked virtual sound card. Afterwards the demo writes
what each side heard as WAV files and reports latency, loss, concealment,
bitrate and the correlation of what was sent with what was received.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from rtai import codecs
from rtai.audio.clocked import ClockedEndpoint
from rtai.audio.files import ArraySink, FileSink
from rtai.audio.signals import ArraySource, speech
from rtai.codecs import EncoderSettings
from rtai.config import DEFAULT_CODEC, ConfigError, PeerConfig, buffer_ms, default_block_frames
from rtai.dsp.align import find_lag, windowed_delays
from rtai.netsim.model import ImpairmentConfig
from rtai.netsim.relay import Relay
from rtai.session import Peer

RATE_HZ = 48000
CORR_WINDOW_S = 0.2  # windows of the sent-vs-heard correlation, each at its own delay


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--seconds", type=float, default=8.0, help="length of the call (8 s)")
    p.add_argument(
        "--codec", default=DEFAULT_CODEC, choices=codecs.codec_names(), help="codec (opus)"
    )
    p.add_argument("--bitrate", type=float, default=48, metavar="KBPS", help="Opus bitrate (48)")
    p.add_argument(
        "--frame", type=int, help="samples per packet (480 = 10 ms for opus, 128 for pcm)"
    )
    p.add_argument(
        "--buffer", default="auto", metavar="auto|MS",
        help="jitter buffer: auto adapts to the measured jitter, as in a call; a number "
        "fixes the target in ms (auto)",
    )  # fmt: skip
    p.add_argument("--delay", type=float, default=20.0, metavar="MS", help="one-way delay (20)")
    p.add_argument("--jitter", type=float, default=3.0, metavar="MS", help="jitter (3)")
    p.add_argument("--loss", type=float, default=1.0, metavar="PCT", help="packet loss (1)")
    p.add_argument("--burst", type=float, default=0.0, metavar="N", help="mean loss burst (0)")
    p.add_argument("--reorder", type=float, default=0.0, metavar="PCT", help="reordering (0)")
    p.add_argument("--duplicate", type=float, default=0.0, metavar="PCT", help="duplicates (0)")
    p.add_argument("--seed", type=int, default=1, help="network simulator seed (1)")
    p.add_argument("--out", default="demo-out", metavar="DIR", help="where WAVs go (demo-out)")
    p.add_argument("--report", metavar="FILE.json", help="also write the report as JSON")
    p.add_argument("-q", "--quiet", action="store_true", help="print only the report")


def run(args) -> int:
    if not 1 <= args.seconds <= 600:
        raise ConfigError("--seconds: use 1 to 600")
    impair = ImpairmentConfig(
        delay_ms=args.delay,
        jitter_ms=args.jitter,
        loss_pct=args.loss,
        burst_packets=args.burst,
        reorder_pct=args.reorder,
        duplicate_pct=args.duplicate,
        seed=args.seed,
    )
    impair.validate()
    cfg = PeerConfig(
        block_frames=args.frame or default_block_frames(args.codec, RATE_HZ),
        codecs=(args.codec,),
        buffer_ms=buffer_ms(args.buffer),
        buffer_auto=args.buffer == "auto",
        encoder=EncoderSettings(bitrate_bps=int(args.bitrate * 1000)),
    )
    cfg.validate()
    out_dir = Path(args.out)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ConfigError(f"--out {out_dir}: {e.strerror}") from None
    console = Console(stderr=True, quiet=args.quiet)
    console.print(
        f"rtai demo: two peers ({args.codec}, {cfg.block_frames}-frame blocks) over loopback "
        f"UDP through netsim (delay {args.delay} ms, "
        f"jitter {args.jitter} ms, loss {args.loss} %), {args.seconds:g} s of speech each way"
    )
    report = run_call(cfg, impair, args.seconds, out_dir, console)
    _print_report(report, Console())
    if args.report:
        tmp = Path(args.report).with_suffix(".tmp")
        tmp.write_text(json.dumps(report, indent=2) + "\n")
        os.replace(tmp, args.report)
    return 0


def run_call(
    cfg: PeerConfig, impair: ImpairmentConfig, seconds: float, out_dir: Path, console: Console
) -> dict:
    """Run the call and return the report (also used by tests)."""
    n = int(seconds * RATE_HZ)
    voices = {"listener": speech(RATE_HZ, seconds, 0), "caller": speech(RATE_HZ, seconds, 1)}
    sinks = {k: ArraySink(RATE_HZ, 1) for k in voices}
    endpoints = {
        k: ClockedEndpoint(ArraySource(voices[k], RATE_HZ), sinks[k], RATE_HZ, 1, cfg.block_frames)
        for k in voices
    }
    lsock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    lsock.bind(("127.0.0.1", 0))
    csock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    csock.bind(("127.0.0.1", 0))
    from rtai.pairing import Pairing

    code = Pairing.issue_codes()  # encrypted, as a real call: the caller is given the code
    listener = Peer(cfg, endpoints["listener"], lsock, None, name="listener", pairing=code)
    relay = Relay(("127.0.0.1", 0), lsock.getsockname(), impair)
    caller = Peer(cfg, endpoints["caller"], csock, relay.listen_address, name="caller",
                  pairing=Pairing.from_code(code.code))  # fmt: skip
    relay.start()
    listener.start()
    caller.start()
    progress = Progress(
        TextColumn("call"),
        BarColumn(),
        TextColumn("{task.fields[status]}"),
        TimeRemainingColumn(),
        console=console,
        transient=True,
    )
    try:
        with progress:
            task = progress.add_task("call", total=seconds, status="")
            t0 = time.monotonic()
            while not caller.done.wait(1.0):
                s = caller.snapshot()
                progress.update(
                    task,
                    completed=min(seconds, time.monotonic() - t0),
                    status=f"latency {s.get('latency_ms') or 0:.1f} ms, "
                    f"lost {s.get('lost', 0)}, concealed {s.get('concealed', 0)}",
                )
                if time.monotonic() - t0 > seconds + 10:
                    break  # the caller should have ended by itself: don't hang
    finally:
        caller.stop()
        time.sleep(0.1)
        listener.stop()
        relay.stop()
        relay.close()
    for level, text in caller.events() + listener.events():
        if level != "info":
            console.print(f"rtai demo: {text}")
    final = {
        name: (peer.finished_calls[-1] if peer.finished_calls else {})
        for name, peer in (("listener", listener), ("caller", caller))
    }
    relay_stats = relay.stats()
    report: dict = {"seconds": seconds, "block_frames": cfg.block_frames, "netsim": asdict(impair)}
    other = {"listener": "caller", "caller": "listener"}
    for name in ("caller", "listener"):
        heard = sinks[name].data()[:, 0]
        sent = voices[other[name]][:n]
        # Window by window, each at its own delay: an adaptive buffer moves the delay
        # on purpose (time-scaling), which one whole-call alignment would count as damage.
        # Short windows, so that few of them hold a move (a 0.5 s window holding one
        # read 0.4-0.7 while the audio on either side of the move was intact).
        rows: list = []
        if heard.size:
            # Search each window from 0.1 s before the whole call's best alignment on.
            start = find_lag(sent, heard) - RATE_HZ // 10
            windows = windowed_delays(sent, 0, heard, -start, RATE_HZ, CORR_WINDOW_S)
            rows = [(t, d + start * 1000 / RATE_HZ, c) for t, d, c in windows]
        corr = float(np.median([c for _, _, c in rows])) if rows else 0.0
        wav = out_dir / f"{name}_heard.wav"
        sink = FileSink(wav, RATE_HZ, 1)
        sink.write(heard)
        sink.close()
        lat = peer_latency(listener if name == "listener" else caller)
        s = final[name]
        played = max(1, s.get("played", 0) + s.get("concealed", 0))
        report[name] = {
            "heard_wav": str(wav),
            "latency_ms_median": lat[0],
            "latency_ms_p99": lat[1],
            "received": s.get("received", 0),
            "lost": s.get("lost", 0),
            "late": s.get("late", 0),
            "concealed": s.get("concealed", 0),
            "recovered": s.get("fec_recovered", 0) + s.get("redundant_used", 0),
            "codec": s.get("codec"),
            "concealed_pct": round(100.0 * s.get("concealed", 0) / played, 2),
            "bitrate_kbps": final[other[name]].get("bitrate_kbps"),
            "rtt_ms": s.get("rtt_ms"),
            "jitter_ms": s.get("jitter_ms"),
            "correlation": round(corr, 4),
            "alignment_lag_ms": round(float(np.median([d for _, d, _ in rows])), 2)
            if rows
            else None,
        }
    report["netsim_counts"] = {
        "to_listener": asdict(relay_stats.forward),
        "to_caller": asdict(relay_stats.reverse),
    }
    return report


def peer_latency(peer: Peer) -> tuple[float | None, float | None]:
    v = peer.latency.since(-np.inf)
    if not v.size:
        return None, None
    return round(float(np.median(v)) * 1000, 2), round(float(np.percentile(v, 99)) * 1000, 2)


def _print_report(r: dict, console: Console) -> None:
    t = Table(title="rtai demo report", show_header=True)
    t.add_column("")
    t.add_column("caller heard")
    t.add_column("listener heard")
    rows = [
        ("mouth-to-ear latency, median", "latency_ms_median", " ms"),
        ("mouth-to-ear latency, p99", "latency_ms_p99", " ms"),
        ("packets received", "received", ""),
        ("packets lost", "lost", ""),
        ("late packets", "late", ""),
        ("codec", "codec", ""),
        ("lost blocks recovered (FEC, redundancy)", "recovered", ""),
        ("blocks concealed", "concealed", ""),
        ("concealed audio", "concealed_pct", " %"),
        ("interarrival jitter", "jitter_ms", " ms"),
        ("round-trip time (RTCP)", "rtt_ms", " ms"),
        ("bitrate received", "bitrate_kbps", " kbit/s"),
        (f"correlation sent vs heard ({CORR_WINDOW_S:g} s windows)", "correlation", ""),
    ]
    for label, key, unit in rows:
        c, li = r["caller"].get(key), r["listener"].get(key)
        t.add_row(label, "--" if c is None else f"{c}{unit}", "--" if li is None else f"{li}{unit}")
    console.print(t)
    console.print(f"what each side heard: {r['caller']['heard_wav']}, {r['listener']['heard_wav']}")
