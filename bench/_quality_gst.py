"""The GStreamer reference receiver, fed the very datagrams rtai's receiver got.

For each stream, one ``gst-launch-1.0`` runs::

    udpsrc address=127.0.0.1 port=P caps="application/x-rtp,...,encoding-name=OPUS,payload=111"
      ! rtpjitterbuffer latency=L do-lost=true ! rtpopusdepay
      ! opusdec plc=true use-inband-fec=true ! audioconvert ! audioresample
      ! audio/x-raw,rate=48000,channels=1 ! tee name=t
      t. ! queue ! wavenc ! filesink location=OUT.wav
      t. ! queue ! fakesink sync=true processing-deadline=0 silent=false

``do-lost=true`` makes the jitter buffer announce each missing packet downstream; without
it opusdec never learns of a loss, so it can neither conceal nor use in-band FEC.

One pacing thread sends every stream's impaired datagrams over loopback UDP (127.0.0.1
only) at their simulated release times, so all streams run at once in real time. The
WAV holds the audio; the ``fakesink sync=true`` branch tells *when* it would have been
played: it renders each buffer at its running time plus the pipeline latency (its own
``processing-deadline`` margin set to 0, as rtai's device latency is left out too), and
we note the wall-clock time at which gst-launch reports it (``-v`` prints its
``last-message``, one line per buffer, flushed). ``render = pts + c``; the constant ``c``
is the lowest percentile of ``wall - pts`` (reading a pipe only ever adds delay). The
wall clock maps back to the simulated one through the pacing start. The WAV played back
to back from the first buffer's render time (as an audio sink plays it) is the output:
a timeline on the same clock as rtai's, scored the same way.

Only processes started here are ever signalled, by their own PID: SIGINT (with
``gst-launch-1.0 -e``, an end-of-stream, so the WAV header is completed), then SIGKILL
if one does not exit.
"""

from __future__ import annotations

import re
import shutil
import signal
import socket
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf

GST_LAUNCH = "gst-launch-1.0"
OPUS_CAPS = "application/x-rtp,media=audio,clock-rate=48000,encoding-name=OPUS,payload=111"
READY_TIMEOUT_S = 15.0
START_LEAD_S = 0.5  # the first datagram leaves this long after every pipeline is playing
END_EXTRA_S = 0.6  # after the last datagram, wait this long (plus the latency) for output
EXIT_TIMEOUT_S = 10.0
RENDER_OFFSET_PERCENTILE = 1.0

_CHAIN = re.compile(
    r"fakesink\d*: last-message = chain .*?\((\d+) bytes, dts: [^,]*, pts: (\d+):(\d+):([\d.]+)"
)


def available() -> str | None:
    """Why the GStreamer reference cannot run here (one line), or None when it can."""
    if shutil.which(GST_LAUNCH) is None:
        return (
            "gst-launch-1.0 not found; apt-get install --no-install-recommends "
            "gstreamer1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-good"
        )
    for element in ("udpsrc", "rtpjitterbuffer", "rtpopusdepay", "opusdec", "wavenc"):
        done = subprocess.run(
            ["gst-inspect-1.0", "--exists", element], capture_output=True, check=False
        )
        if done.returncode != 0:
            return (
                f"GStreamer element {element} is missing; apt-get install "
                "gstreamer1.0-plugins-base gstreamer1.0-plugins-good"
            )
    return None


def version() -> str:
    try:
        out = subprocess.run([GST_LAUNCH, "--version"], capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    for line in out.stdout.splitlines():
        if line.startswith("GStreamer "):
            return line.strip()
    return ""


def pipeline(port: int, latency_ms: int, wav: Path, fec: bool = True) -> list[str]:
    return [
        GST_LAUNCH,
        "-e",
        "-v",
        "udpsrc",
        "address=127.0.0.1",
        f"port={port}",
        f"caps={OPUS_CAPS}",
        "!",
        "rtpjitterbuffer",
        f"latency={latency_ms}",
        "do-lost=true",
        "!",
        "rtpopusdepay",
        "!",
        "opusdec",
        "plc=true",
        f"use-inband-fec={'true' if fec else 'false'}",
        "!",
        "audioconvert",
        "!",
        "audioresample",
        "!",
        "audio/x-raw,rate=48000,channels=1",
        "!",
        "tee",
        "name=t",
        "t.",
        "!",
        "queue",
        "!",
        "wavenc",
        "!",
        "filesink",
        f"location={wav}",
        "t.",
        "!",
        "queue",
        "!",
        "fakesink",
        "sync=true",
        "processing-deadline=0",  # a device sink's own margin is not the receiver's delay
        "silent=false",
    ]


@dataclass
class GstStream:
    """One stream to play into one GStreamer receiver."""

    key: str
    datagrams: list[tuple[float, bytes]]  # (release time s on the simulated clock, data)
    fec: bool = True  # opusdec use-inband-fec


@dataclass
class GstResult:
    key: str
    output: np.ndarray | None  # float32 mono timeline
    t_out0_s: float  # simulated time of output[0]
    buffers: int = 0
    late_p99_ms: float = 0.0  # how much later than the best case buffers were reported
    wav_frames: int = 0
    pts_drift_ms: float = 0.0  # largest gap between buffer PTS and back-to-back playback
    error: str | None = None
    log_tail: str = ""
    sent: int = 0


@dataclass
class _Proc:
    stream: GstStream
    port: int
    wav: Path
    proc: subprocess.Popen
    lines: list[tuple[float, str]] = field(default_factory=list)
    other: list[str] = field(default_factory=list)
    ready: threading.Event = field(default_factory=threading.Event)
    reader: threading.Thread | None = None


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _read(p: _Proc) -> None:
    assert p.proc.stdout is not None
    for raw in iter(p.proc.stdout.readline, b""):
        now = time.monotonic()
        line = raw.decode(errors="replace").rstrip()
        if "last-message = chain" in line:
            p.lines.append((now, line))
            continue
        if "Setting pipeline to PLAYING" in line or "New clock" in line:
            p.ready.set()
        if "caps = " not in line and "last-message" not in line:
            p.other.append(line)
            del p.other[:-30]


def _stop(p: _Proc) -> None:
    if p.proc.poll() is None:
        p.proc.send_signal(signal.SIGINT)  # -e: end of stream first, so the WAV is whole
        try:
            p.proc.wait(timeout=EXIT_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            p.proc.kill()
            p.proc.wait(timeout=5)
    if p.reader is not None:
        p.reader.join(timeout=5)


def run_streams(
    streams: list[GstStream],
    latency_ms: int,
    workdir: Path,
    rate_hz: int = 48000,
    progress=None,
) -> list[GstResult]:
    """Play every stream into its own GStreamer receiver at once, in real time."""
    procs: list[_Proc] = []
    try:
        for s in streams:
            port = _free_udp_port()
            wav = workdir / f"gst-{s.key}.wav"
            proc = subprocess.Popen(
                pipeline(port, latency_ms, wav, s.fec),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            p = _Proc(s, port, wav, proc)
            p.reader = threading.Thread(target=_read, args=(p,), daemon=True)
            p.reader.start()
            procs.append(p)
        deadline = time.monotonic() + READY_TIMEOUT_S
        for p in procs:
            if not p.ready.wait(max(0.0, deadline - time.monotonic())):
                raise RuntimeError(
                    f"gst-launch-1.0 for {p.stream.key} did not start: " + " / ".join(p.other[-5:])
                )
        time.sleep(0.3)  # udpsrc is bound once PLAYING is reached; leave a margin

        wall0, sent = replay(procs, latency_ms / 1000, progress)
    finally:
        for p in procs:
            _stop(p)
    return [_result(p, wall0, rate_hz, n) for p, n in zip(procs, sent, strict=True)]


def replay(procs: list[_Proc], tail_s: float, progress=None) -> tuple[float, list[int]]:
    """Send each receiver its stream's datagrams at their simulated times, in real time,
    over loopback only; then wait ``tail_s`` more. Returns the wall-clock time of
    simulated zero and how many datagrams went to each receiver."""
    events = sorted((t, i, data) for i, p in enumerate(procs) for t, data in p.stream.datagrams)
    last_s = events[-1][0] if events else 0.0
    sent = [0] * len(procs)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        wall0 = time.monotonic() + START_LEAD_S
        for t, i, data in events:
            delay = wall0 + t - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            sock.sendto(data, ("127.0.0.1", procs[i].port))
            sent[i] += 1
            if progress is not None:
                progress(t, last_s)
        end = wall0 + last_s + tail_s + END_EXTRA_S
        time.sleep(max(0.0, end - time.monotonic()))
    return wall0, sent


def _result(p: _Proc, wall0: float, rate_hz: int, sent: int) -> GstResult:
    tail = " / ".join(p.other[-6:])
    key = p.stream.key
    if not p.lines:
        return GstResult(key, None, 0.0, error="no audio buffers reported", log_tail=tail)
    try:
        audio, wav_rate = sf.read(p.wav, dtype="float32", always_2d=True)
    except (OSError, RuntimeError) as exc:
        return GstResult(key, None, 0.0, error=f"unreadable WAV: {exc}", log_tail=tail)
    if wav_rate != rate_hz:
        return GstResult(key, None, 0.0, error=f"WAV at {wav_rate} Hz", log_tail=tail)
    audio = audio[:, 0]
    walls, pts, nbytes = [], [], []
    for wall, line in p.lines:
        m = _CHAIN.search(line)
        if m is None:
            continue
        nbytes.append(int(m.group(1)))
        pts.append(int(m.group(2)) * 3600 + int(m.group(3)) * 60 + float(m.group(4)))
        walls.append(wall)
    walls_a, pts_a = np.array(walls), np.array(pts)
    total = sum(nbytes)
    bytes_per_frame = total / max(1, audio.size)
    if abs(bytes_per_frame - round(bytes_per_frame)) > 1e-6:
        return GstResult(
            key, None, 0.0, error=f"{total} bytes reported, {audio.size} frames in WAV"
        )
    bpf = round(bytes_per_frame)
    lag_s = walls_a - pts_a
    c = float(np.percentile(lag_s, RENDER_OFFSET_PERCENTILE))
    # An audio sink plays the samples back to back, starting at the first buffer's render
    # time, and only resyncs when the timestamps stray further than its alignment
    # threshold (40 ms by default). So the WAV, played contiguously, is the output; how
    # far the buffer timestamps wander from that is kept as a diagnostic.
    starts_s = np.concatenate([[0.0], np.cumsum(np.array(nbytes[:-1]) // bpf)]) / rate_hz
    drift_ms = float(np.max(np.abs((pts_a - pts_a[0]) - starts_s)) * 1000.0)
    out = np.ascontiguousarray(audio, dtype=np.float32)
    return GstResult(
        key=key,
        output=out,
        t_out0_s=float(pts_a[0] + c - wall0),
        buffers=len(pts),
        late_p99_ms=float(np.percentile(lag_s - c, 99) * 1000.0),
        wav_frames=int(audio.size),
        pts_drift_ms=drift_ms,
        log_tail=tail,
        sent=sent,
    )
