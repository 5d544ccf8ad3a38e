"""Mouth-to-ear latency of a real call on the JACK rig, per codec and block size.

Each run is a (codec, block size) pair: PCM at 64, 128, 256 and 480 frames, Opus at
240, 480 (10 ms, rtai's default) and 960 frames (``--runs``). Both peers get
``--codec`` explicitly, and the codec the call ran is checked in their stats.
For each run a private ``jackd`` (dummy driver, 48000 Hz, period = block size)
gets three rig cards (see :mod:`rtai.testing.jack_rig`): ``rigL`` for the floor, and
``rigA``/``rigB`` for the two peers. Then:

1. Floor. A child process (this script with ``--loop-child``) opens ``rigL`` through
   PortAudio exactly as rtai opens a card (same block size, ``latency="low"``) and
   copies each input block to the output in its callback. The rig plays noise into
   ``rigL``'s microphone and records its speaker: the delay is what the device loop
   alone costs (capture block + playout block + whatever JACK/PortAudio add), the part
   of the latency no jitter buffer or network can remove.
2. The call. ``rtai listen`` on ``rigA`` and ``rtai call`` on ``rigB`` over loopback UDP.
   The rig plays two different speech signals into both microphones at once and
   records both speakers. The delay of each direction is measured by cross-correlating
   0.5 s windows (hop 0.25 s) of what was played with what came out, skipping quiet
   windows (speech pauses), so the median and p99 describe the latency across the run.
3. What rtai itself reports: the ``latency_ms`` (median over one second) and
   ``latency_ms_p99`` fields of each peer's ``--stats-json`` lines written while talking.
   Opus delays the decoded audio by its algorithmic delay (the encoder's lookahead,
   312 frames = 6.5 ms at 48 kHz); rtai stamps capture time minus that lookahead, so
   its figures should still agree with the rig's.
4. xruns (rtai's own count and the JACK server's) and each peer's CPU time over the
   talking interval, from /proc/PID/stat.

The table goes to docs/benchmarks.md (section ``latency``) and the plot to
docs/latency.png. Run from the repository root::

    .venv/bin/python bench/latency.py            # ~20 s of talk per run, ~4 min
    .venv/bin/python bench/latency.py --quick    # ~6 s of talk per run
    .venv/bin/python bench/latency.py --runs pcm:128,opus:480   # only these runs
"""

from __future__ import annotations

import argparse
import os
import select
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy import signal as sps
from scipy.ndimage import median_filter

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common  # noqa: E402

from rtai.testing.jack_rig import RigCard  # noqa: E402

RATE_HZ = 48000
DEFAULT_RUNS = "pcm:64,pcm:128,pcm:256,pcm:480,opus:240,opus:480,opus:960"
CPU_TARGET = ("opus", 480, 5.0)  # the target: Opus at 10 ms, < 5 % of a core per peer
SECTION = "latency"
PNG = _common.REPO / "docs" / "latency.png"
RTAI = [sys.executable, "-m", "rtai"]  # the rtai CLI of the interpreter running this

WINDOW_S = 0.5  # length of one delay-measurement window
HOP_S = 0.25  # windows overlap by half
SEARCH_S = 0.1  # each window searches +-100 ms around the whole-run delay
QUIET_DBFS = -35.0  # windows quieter than this (speech pauses) are skipped
# A window matching worse than this is counted as unmatched. PCM comes out bit-exact;
# Opus at 32 kbit/s keeps speech windows at 0.92..0.96, while a window across a dropout
# or a step of the latency falls to 0.5..0.7.
MIN_WINDOW_CORR = {"pcm": 0.9, "opus": 0.8}
POLL_S = 0.1  # how often the talk loop looks at the stats files and the progress bar
LEAD_S = 1.0  # the call runs this long before the talk starts (playout settles)
TAIL_S = 0.5  # and this long after it ends (the last words reach the speakers)
LOOP_NOISE_S = 1.5  # noise played through the device loop to measure the floor
STARTUP_TIMEOUT_S = 20.0
DIFF_WARN_MS = 1.0  # rtai-reported vs rig-measured latency further apart gets a note
RIG_GLITCHES_WARN = 5  # more stale or missed rig cycles than this in a run get a note


# --- one run's results ---------------------------------------------------------------


@dataclass
class Direction:
    """One direction of the call, seen from the peer that hears it."""

    label: str  # "A→B": spoken into rigA's microphone, heard at rigB's speaker
    hearer: str  # "caller B" or "listener A"
    leg: Leg  # what the rig measured
    rig_glitches: int = 0  # stale or missed cycles of the speaking rig card while talking
    rtai_median_ms: float | None = None
    rtai_p99_ms: float | None = None
    rtai_seconds: int = 0  # stats lines the rtai figures come from
    paired_diffs_ms: np.ndarray = field(default_factory=lambda: np.zeros(0))  # rtai - rig
    rtai_buffer_ms: float | None = None  # median jitter-buffer depth while talking
    xruns: int = 0  # the hearer's rtai xruns, whole process
    talk_xruns: int = 0  # ... while talking
    peer_minutes: float = 0.0
    cpu_pct: float | None = None  # the hearer's CPU over the talk, % of one core
    concealed: int = 0  # blocks the hearer concealed in the call
    talk_concealed: int = 0  # ... while talking
    late: int = 0
    crashed: str | None = None  # first error line if the hearer's log has a traceback
    codec: str | None = None  # the codec of the call, from the hearer's stats
    kbps: float | None = None  # median rate of RTP packets the speaker sent while talking

    def pct_ms(self, q: float) -> float | None:
        frames = self.leg.pct_frames(q)
        return None if frames is None else frames * 1000.0 / RATE_HZ


@dataclass
class Run:
    codec: str  # what both peers were told with --codec
    block: int
    talk_s: float
    codec_delay_frames: int = 0  # the encoder's lookahead (0 for PCM)
    codec_cpu_pct: float | None = None  # encode + decode alone, % of one core (offline)
    load: str = ""  # load average when the run started
    machine_busy_pct: float | None = None  # all cores busy over the talk, % of all cores
    peers_pct: float | None = None  # the two peers' share of that, % of all cores
    floor: Leg | None = None  # the bare device loop through rigL
    floor_glitches: int = 0
    dirs: list[Direction] = field(default_factory=list)
    jack_xruns: int = 0  # server xruns seen by the rig over the whole run
    jack_talk_xruns: int = 0  # ... while talking
    jack_minutes: float = 0.0

    @property
    def name(self) -> str:
        return f"{self.codec} {self.block}"

    @property
    def block_ms(self) -> float:
        return self.block * 1000.0 / RATE_HZ

    @property
    def codec_delay_ms(self) -> float:
        return self.codec_delay_frames * 1000.0 / RATE_HZ

    @property
    def floor_frames(self) -> int | None:
        frames = None if self.floor is None else self.floor.pct_frames(50)
        return None if frames is None else round(frames)

    @property
    def floor_ms(self) -> float | None:
        return None if self.floor_frames is None else self.floor_frames * 1000.0 / RATE_HZ


# --- processes we start ----------------------------------------------------------------


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of a live process, all threads (None once it is gone)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            rest = f.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    # rest[0] is field 3 (state); utime and stime are fields 14 and 15
    return (int(rest[11]) + int(rest[12])) / os.sysconf("SC_CLK_TCK")


def machine_ticks() -> tuple[int, int] | None:
    """(busy, total) clock ticks of all cores so far, from /proc/stat (None if unreadable)."""
    try:
        with open("/proc/stat", encoding="ascii") as f:
            ticks = [int(x) for x in f.readline().split()[1:9]]
    except (OSError, ValueError):
        return None
    idle = ticks[3] + ticks[4]  # idle + iowait
    return sum(ticks) - idle, sum(ticks)


class PeerProcess:
    """One ``rtai`` subprocess: its log, its stats file, stopped only by its own PID."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], workdir: Path) -> None:
        self.name = name
        self.log_path = workdir / f"{name}.log"
        self.stats_path = workdir / f"{name}.jsonl"
        argv = [*argv, "--stats-json", str(self.stats_path)]
        self.started_s = time.monotonic()
        self.ended_s: float | None = None
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                argv,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def log(self) -> str:
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""

    def log_tail(self, lines: int = 6) -> str:
        return " / ".join(self.log().strip().splitlines()[-lines:])

    def wait_for(self, text: str, timeout_s: float = STARTUP_TIMEOUT_S) -> None:
        deadline = time.monotonic() + timeout_s
        while text not in self.log():
            if self.proc.poll() is not None:
                raise RuntimeError(f"rtai {self.name} exited early: {self.log_tail()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"rtai {self.name} never said {text!r}: {self.log_tail()}")
            time.sleep(0.05)

    def stats(self) -> list[dict]:
        import json

        try:
            lines = self.stats_path.read_text(encoding="utf-8").splitlines()
        except OSError:
            return []
        out = []
        for line in lines:
            try:
                out.append(json.loads(line))
            except ValueError:
                break  # a line being written right now
        return out

    def count_lines(self) -> int:
        try:
            return self.stats_path.read_bytes().count(b"\n")
        except OSError:
            return 0

    def cpu_seconds(self) -> float | None:
        return cpu_seconds(self.proc.pid)

    def crashed(self) -> str | None:
        text = self.log()
        if "Traceback" not in text:
            return None
        errors = [ln.strip() for ln in text.splitlines() if "Error" in ln and ":" in ln]
        return errors[0] if errors else "traceback in the log"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)  # rtai ends the call and exits cleanly
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        if self.ended_s is None:
            self.ended_s = time.monotonic()


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def drain(stream, keep: int = 50) -> deque:
    """Read a child's pipe in the background so it never blocks; keep its last lines."""
    tail: deque = deque(maxlen=keep)

    def run() -> None:
        for line in iter(stream.readline, b""):
            tail.append(line.decode(errors="replace").rstrip())

    threading.Thread(target=run, daemon=True).start()
    return tail


# --- the rig, with the JACK frame of every block it plays -----------------------------


class TimedRigCard(RigCard):
    """A rig card that also logs, for every cycle it plays in, the cycle's frame time.

    The base card counts a played sample's entry frame as ``play_start_frame`` plus its
    index, which is exact only if the card's callback sees every JACK cycle once with
    the right frame time. Under load it does not always: a callback may read a stale
    frame time (the same value twice, then a jump of two periods), or miss a cycle (its
    later samples then enter a period late for the rest of the run). The log tells
    the two apart: ``frame - position`` is constant while all is well, a stale read is
    a one-cycle outlier, a missed cycle a lasting step.
    """

    def __init__(self, server: str, name: str, record_seconds: float, log_cycles: int) -> None:
        self._log = np.zeros((log_cycles, 2), dtype=np.int64)  # (frame time, position)
        self._log_n = 0
        super().__init__(server, name, record_seconds=record_seconds)

    def _process(self, frames: int) -> None:
        logging = self._playing and self._pos < len(self._signal)
        pos = self._pos
        super()._process(frames)
        n = self._log_n
        if logging and n < len(self._log):
            self._log[n, 0] = self.client.last_frame_time
            self._log[n, 1] = pos
            self._log_n = n + 1

    def play(self, signal_: np.ndarray) -> None:
        self._log_n = 0
        super().play(signal_)

    def _offsets(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(positions, raw frame - position, the same without one-cycle outliers)."""
        log = self._log[: self._log_n]
        raw = log[:, 0] - log[:, 1]
        return log[:, 1], raw, median_filter(raw, size=5, mode="mirror")

    def entry_frames(self, positions: np.ndarray) -> np.ndarray:
        """JACK frame at which each sample index of the played signal entered the graph."""
        pos, _, offset = self._offsets()
        if pos.size == 0:
            return np.asarray(positions, dtype=np.int64) + int(self.play_start_frame or 0)
        i = np.clip(np.searchsorted(pos, positions, side="right") - 1, 0, pos.size - 1)
        return np.asarray(positions, dtype=np.int64) + offset[i]

    def glitches(self) -> int:
        """Played cycles whose frame time was stale or skipped (0 on a healthy rig)."""
        _, raw, offset = self._offsets()
        return int(np.count_nonzero(raw != offset) + np.count_nonzero(np.diff(offset)))


# --- the floor: a bare PortAudio loop through one card --------------------------------


def loop_child(card: str, block: int) -> int:
    """Child mode: copy ``card``'s input to its output until SIGTERM."""
    import sounddevice as sd

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())

    def callback(indata, outdata, frames, time_info, status) -> None:
        outdata[:] = indata

    with sd.Stream(
        device=(card, card),
        samplerate=RATE_HZ,
        blocksize=block,
        channels=1,
        dtype="float32",
        latency="low",
        callback=callback,
    ):
        print("ready", flush=True)
        stop.wait(60)
    return 0


def measure_floor(card: TimedRigCard, env: dict[str, str], block: int) -> tuple[Leg, int]:
    """Frames from ``card``'s microphone to its speaker through a bare callback loop."""
    argv = [sys.executable, __file__, "--loop-child", card.name, "--frame", str(block)]
    child = subprocess.Popen(
        argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True
    )
    err = drain(child.stderr)
    try:
        ready, _, _ = select.select([child.stdout], [], [], STARTUP_TIMEOUT_S)
        if not ready or child.stdout.readline().strip() != b"ready":
            raise RuntimeError(f"the loop child did not start: {' / '.join(list(err)[-4:])}")
        time.sleep(0.3)
        noise = 0.1 * np.random.default_rng(block).standard_normal(int(LOOP_NOISE_S * RATE_HZ))
        noise = noise.astype(np.float32)
        card.play(noise)
        while not card.playing_done:
            time.sleep(0.05)
        time.sleep(0.3)
        rec_start, rec = card.recording()
        return measure_leg(noise, card, rec[:, 0], rec_start), card.glitches()
    finally:
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
            try:
                child.wait(timeout=5)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait(timeout=5)


# --- delay over time ------------------------------------------------------------------


@dataclass
class Leg:
    """Delays of one played signal found in one recording."""

    delays_frames: np.ndarray  # one per matched loud window
    starts: np.ndarray  # index in the played signal of each matched window's first sample
    windows_loud: int
    windows_unmatched: int
    run_corr: float  # correlation of the single whole-run alignment

    def pct_frames(self, q: float) -> float | None:
        return float(np.percentile(self.delays_frames, q)) if self.delays_frames.size else None


def measure_leg(
    played: np.ndarray,
    card: TimedRigCard,
    recorded: np.ndarray,
    rec_start: int,
    min_corr: float = MIN_WINDOW_CORR["pcm"],
) -> Leg:
    """Delay (frames) of each loud window of ``played`` (played by ``card``) in ``recorded``.

    A whole-run cross-correlation gives a first guess; then each window is searched within
    +-SEARCH_S of it by normalised cross-correlation, and its delay is counted from the
    JACK frame at which its first sample really entered (``card.entry_frames``).
    """
    from rtai.dsp.align import correlation
    from rtai.testing.jack_rig import measure_delay_frames

    rec = np.asarray(recorded, dtype=np.float64)
    guess, run_corr = measure_delay_frames(played, card.play_start_frame, rec, rec_start)
    win, hop, margin = int(WINDOW_S * RATE_HZ), int(HOP_S * RATE_HZ), int(SEARCH_S * RATE_HZ)
    starts = np.arange(0, played.size - win + 1, hop)
    entry = card.entry_frames(starts)
    delays, matched, loud, unmatched = [], [], 0, 0
    for s, e in zip(starts, entry, strict=True):
        w = np.asarray(played[s : s + win], dtype=np.float64)
        rms = float(np.sqrt(np.mean(w * w)))
        if rms <= 0 or 20 * np.log10(rms) < QUIET_DBFS:
            continue
        r0 = int(card.play_start_frame + s + guess - margin - rec_start)
        if r0 < 0 or r0 + win + 2 * margin > rec.size:
            continue  # not covered by the recording
        loud += 1
        seg = rec[r0 : r0 + win + 2 * margin]
        xc = sps.correlate(seg, w, mode="valid", method="fft")  # xc[k] = <seg[k:k+win], w>
        energy = np.concatenate(([0.0], np.cumsum(seg * seg)))
        seg_norm = np.sqrt(np.maximum(energy[win:] - energy[:-win], 1e-20))
        k = int(np.argmax(xc / seg_norm))
        if correlation(w, seg[k : k + win]) < min_corr:
            unmatched += 1
            continue
        delays.append(rec_start + r0 + k - int(e))
        matched.append(s)
    return Leg(
        np.asarray(delays, dtype=np.int64),
        np.asarray(matched, dtype=np.int64),
        loud,
        unmatched,
        float(run_corr),
    )


def paired_seconds(
    lines: list[dict], written_s: dict[int, float], leg: Leg, talk_start_s: float
) -> np.ndarray:
    """rtai's ``latency_ms`` minus the rig's median over the same second, per stats line.

    A stats line covers the second before it was written (``written_s``, monotonic,
    seen by polling every POLL_S); the rig windows that lie wholly inside that second
    (less one poll) are compared with it. Seconds without a loud window are skipped.
    """
    win_s = WINDOW_S
    begin = talk_start_s + leg.starts / RATE_HZ
    diffs = []
    for j, w in sorted(written_s.items()):
        lat = lines[j].get("latency_ms") if j < len(lines) else None
        if lat is None:
            continue
        inside = (begin >= w - 1.0) & (begin + win_s <= w - POLL_S)
        if inside.any():
            rig_ms = float(np.median(leg.delays_frames[inside])) * 1000.0 / RATE_HZ
            diffs.append(float(lat) - rig_ms)
    return np.asarray(diffs)


def rtai_reported(lines: list[dict]) -> tuple[float | None, float | None, int]:
    """(median of the per-second medians, highest per-second p99, seconds used)."""
    med = [r["latency_ms"] for r in lines if r.get("latency_ms") is not None]
    p99 = [r["latency_ms_p99"] for r in lines if r.get("latency_ms_p99") is not None]
    return (
        float(np.median(med)) if med else None,
        float(np.max(p99)) if p99 else None,
        len(med),
    )


# --- one run: a codec at a block size -------------------------------------------------


def parse_runs(text: str) -> list[tuple[str, int]]:
    """``"pcm:64,opus:480"`` -> [("pcm", 64), ("opus", 480)], checked against the codecs."""
    from rtai import codecs

    runs = []
    for item in text.split(","):
        if not item.strip():
            continue
        codec, sep, block = item.strip().partition(":")
        if not sep or not block.strip().isdigit():
            raise ValueError(f"--runs wants CODEC:BLOCK items, e.g. opus:480; got {item!r}")
        codec, frames = codec.strip().lower(), int(block)
        why = codecs.get_codec(codec).check(RATE_HZ, 1, frames)  # unknown codec: CodecError
        if why:
            raise ValueError(why)
        runs.append((codec, frames))
    if not runs:
        raise ValueError("--runs names no run")
    return runs


def codec_delay_frames(codec: str, block: int) -> int:
    """The codec's algorithmic delay at ``block`` as rtai's encoder reports it."""
    from rtai import codecs
    from rtai.codecs import EncoderSettings

    encoder = codecs.get_codec(codec).make_encoder(RATE_HZ, 1, block, EncoderSettings())
    return int(encoder.lookahead_frames)


def codec_cpu_pct(codec: str, block: int, seconds: float = 5.0) -> float:
    """CPU (% of one core) to encode and decode speech at ``block``, alone, in this process.

    What the codec itself costs a peer each second of a call, apart from the rest of
    rtai (callbacks, jitter buffer, RTP, stats), to set against the peers' CPU.
    """
    from rtai import codecs
    from rtai.audio.signals import speech
    from rtai.codecs import EncoderSettings

    info = codecs.get_codec(codec)
    enc = info.make_encoder(RATE_HZ, 1, block, EncoderSettings())
    dec = info.make_decoder(RATE_HZ, 1, block)
    talk = speech(RATE_HZ, seconds, 0).astype(np.float32).reshape(-1, 1)
    blocks = [talk[i : i + block] for i in range(0, talk.shape[0] - block + 1, block)]
    t0 = time.process_time()
    for b in blocks:
        dec.decode(enc.encode(b))
    return 100.0 * (time.process_time() - t0) / (len(blocks) * block / RATE_HZ)


def run_one(
    codec: str, block: int, talk_s: float, buffer_ms: str, workdir: Path, progress, task
) -> Run:
    from rtai.audio.signals import speech
    from rtai.testing.jack_rig import JackServer, jack_env

    def phase(text: str) -> None:
        progress.update(task, description=f"{codec} {block:>3}: {text}")

    server = f"rtaibench{os.getpid()}{codec}{block}"
    run = Run(codec, block, talk_s, codec_delay_frames(codec, block))
    run.load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    phase("timing the codec alone")
    run.codec_cpu_pct = codec_cpu_pct(codec, block)
    srv = JackServer(server, RATE_HZ, block)
    cards: list = []
    peers: list[PeerProcess] = []
    phase("starting jackd")
    srv.start()
    drain(srv.proc.stderr)
    jack_t0 = time.monotonic()
    try:
        record_s = talk_s + 40.0
        cycles = int((talk_s + 5.0) * RATE_HZ / block)
        rig_a = TimedRigCard(server, "rigA", record_s, cycles)
        rig_b = TimedRigCard(server, "rigB", record_s, cycles)
        rig_l = TimedRigCard(server, "rigL", LOOP_NOISE_S + 15.0, cycles)
        cards += [rig_a, rig_b, rig_l]

        def jack_xruns() -> int:  # every client hears every server xrun: take the most
            return max(c.xruns for c in cards)

        env = jack_env(server)
        phase("measuring the device-loop floor")
        run.floor, run.floor_glitches = measure_floor(rig_l, env, block)
        cards.remove(rig_l)  # its Python callback would only add load from here on
        rig_l.close()

        say_a, say_b = speech(RATE_HZ, talk_s, 0), speech(RATE_HZ, talk_s, 1)
        phase("starting the peers")
        port = free_udp_port()
        common = ["--codec", codec, "--frame", str(block), "--buffer", buffer_ms]
        common += ["--seconds", str(talk_s + 60), "--passphrase", f"rtai latency {os.getpid()}"]
        listener = PeerProcess(
            "listener",
            [*RTAI, "listen", "--bind", "127.0.0.1", "--port", str(port)]
            + ["--input", "rigA", "--output", "rigA", *common],
            env,
            workdir,
        )
        peers.append(listener)
        listener.wait_for("waiting for a caller")
        caller = PeerProcess(
            "caller",
            [*RTAI, "call", f"127.0.0.1:{port}", "--input", "rigB", "--output", "rigB", *common],
            env,
            workdir,
        )
        peers.append(caller)
        caller.wait_for("call 1 with")
        listener.wait_for("call 1 with")
        time.sleep(LEAD_S)

        # Nothing heavy between here and play(): the rig's callbacks share this process's
        # GIL, and one held up reads the next cycle's frame time (a "rig glitch").
        lines0 = [p.count_lines() for p in peers]
        cpu0 = [p.cpu_seconds() for p in peers]
        ticks0 = machine_ticks()
        jx0, t0 = jack_xruns(), time.monotonic()
        rig_a.play(say_a)
        rig_b.play(say_b)
        phase("talking")
        done = progress.tasks[task].completed
        written: list[dict[int, float]] = [{}, {}]  # stats line index -> when first seen

        def watch() -> None:
            time.sleep(POLL_S)
            now = time.monotonic()
            for i, p in enumerate(peers):
                for j in range(lines0[i] + len(written[i]), p.count_lines()):
                    written[i][j] = now
            progress.update(task, completed=done + min(talk_s, now - t0))

        while not (rig_a.playing_done and rig_b.playing_done):
            watch()
        tail_end = time.monotonic() + TAIL_S
        while time.monotonic() < tail_end:
            watch()
        t1 = time.monotonic()
        cpu1 = [p.cpu_seconds() for p in peers]
        ticks1 = machine_ticks()
        if ticks0 and ticks1 and ticks1[1] > ticks0[1]:
            run.machine_busy_pct = 100.0 * (ticks1[0] - ticks0[0]) / (ticks1[1] - ticks0[1])
            if all(c is not None for c in cpu0 + cpu1):
                spent_s = sum(b - a for a, b in zip(cpu0, cpu1, strict=True))
                hz = os.sysconf("SC_CLK_TCK")
                run.peers_pct = 100.0 * spent_s * hz / (ticks1[1] - ticks0[1])
        run.jack_talk_xruns = jack_xruns() - jx0
        alive = [p.proc.poll() is None for p in peers]
        lines_end = time.monotonic() + 1.1  # one more stats line covers the end of the talk
        while time.monotonic() < lines_end:
            watch()
        lines1 = [lines0[i] + len(written[i]) for i in range(len(peers))]

        phase("stopping")
        caller.stop()
        listener.stop()
        run.jack_xruns = jack_xruns()
        run.jack_minutes = (time.monotonic() - jack_t0) / 60.0

        phase("measuring")
        rec_a0, rec_a = rig_a.recording()
        rec_b0, rec_b = rig_b.recording()
        legs = [
            # (label, hearer, played, by card, recorded, its start, index of hearer)
            ("A→B", "caller B", say_a, rig_a, rec_b[:, 0], rec_b0, 1),
            ("B→A", "listener A", say_b, rig_b, rec_a[:, 0], rec_a0, 0),
        ]
        for label, hearer, played, card, rec, r0, i in legs:
            min_corr = MIN_WINDOW_CORR.get(codec, MIN_WINDOW_CORR["opus"])
            leg = measure_leg(played, card, rec, r0, min_corr)
            d = Direction(label, hearer, leg)
            d.rig_glitches = card.glitches()
            peer = peers[i]
            lines = peer.stats()
            talk_lines = lines[lines0[i] : lines1[i]]
            d.rtai_median_ms, d.rtai_p99_ms, d.rtai_seconds = rtai_reported(talk_lines)
            d.paired_diffs_ms = paired_seconds(lines, written[i], d.leg, t0)
            depth = [r["buffer_ms"] for r in talk_lines if r.get("buffer_ms") is not None]
            d.rtai_buffer_ms = float(np.median(depth)) if depth else None
            if lines:
                d.xruns = int(lines[-1].get("xruns") or 0)
                calls = [r for r in lines if r.get("state") == "in call"]
                if calls:
                    d.concealed = int(calls[-1].get("concealed") or 0)
                    d.late = int(calls[-1].get("late") or 0)
                    d.codec = calls[-1].get("codec")
            k = 1 - i  # the speaking peer: what it sent is what this direction carried
            said = peers[k].stats()[lines0[k] : lines1[k]]
            rates = [r["bitrate_kbps"] for r in said if r.get("bitrate_kbps") is not None]
            d.kbps = float(np.median(rates)) if rates else None
            if talk_lines:
                before = lines[lines0[i] - 1] if lines0[i] else {}
                d.talk_xruns = int(talk_lines[-1].get("xruns") or 0) - int(before.get("xruns") or 0)
                d.talk_concealed = int(talk_lines[-1].get("concealed") or 0) - int(
                    before.get("concealed") or 0
                )
            d.peer_minutes = ((peer.ended_s or t1) - peer.started_s) / 60.0
            if cpu0[i] is not None and cpu1[i] is not None and alive[i]:
                d.cpu_pct = 100.0 * (cpu1[i] - cpu0[i]) / (t1 - t0)
            d.crashed = peer.crashed() or (None if alive[i] else "exited during the talk")
            run.dirs.append(d)
        return run
    finally:
        for p in peers:
            p.stop()
        for c in cards:
            try:
                c.close()
            except Exception:  # the server may already be gone; it is stopped next
                pass
        srv.stop()


# --- report ---------------------------------------------------------------------------


def _f(x: float | None, nd: int = 2) -> str:
    return "—" if x is None else f"{x:.{nd}f}"


def _per_min(n: int, minutes: float) -> str:
    return "—" if minutes <= 0 else f"{n / minutes:.1f}"


def _blocks(ms: float | None, r: Run) -> str:
    """``total = floor + rest`` in blocks; with a codec delay, ``floor + codec + rest``."""
    if ms is None:
        return "—"
    total = ms / r.block_ms
    if r.floor_ms is None:
        return f"{total:.1f}"
    floor = r.floor_ms / r.block_ms
    if not r.codec_delay_frames:
        return f"{total:.1f} = {floor:g} + {total - floor:.1f}"
    codec = r.codec_delay_frames / r.block
    return f"{total:.2f} = {floor:g} + {codec:.2f} + {total - floor - codec:.2f}"


def _codec(r: Run) -> str:
    """The codec asked for, and the one the call got if a peer reports another."""
    got = sorted({d.codec for d in r.dirs if d.codec and d.codec != r.codec})
    return r.codec + (f" (call got {', '.join(got)}!)" if got else "")


def _paired(d: Direction) -> str:
    x = d.paired_diffs_ms
    if x.size == 0:
        return "—"
    worst = float(x[np.argmax(np.abs(x))])
    return f"{x.size} ({int(np.sum(np.abs(x) > DIFF_WARN_MS))}), {worst:+.2f}"


def main_table(runs: list[Run]) -> str:
    header = [
        "codec",
        "block (frames / ms)",
        "direction (heard by)",
        "rig median ms",
        "rig p99 ms",
        "rig median in blocks = floor (+ codec delay) + rest",
        "rtai median ms",
        "rtai p99 ms",
        "rtai − rig ms, per second",
        "floor ms (blocks)",
        "xruns/min rtai / JACK, whole run",
        "xruns/min rtai / JACK, talking",
        "CPU % of a core",
    ]
    rows = []
    for r in runs:
        floor = "—" if r.floor_ms is None else f"{r.floor_ms:.2f} ({r.floor_frames / r.block:g})"
        talk_min = r.talk_s / 60.0
        for d in r.dirs:
            med, p99 = d.pct_ms(50), d.pct_ms(99)
            diff = float(np.median(d.paired_diffs_ms)) if d.paired_diffs_ms.size else None
            rows.append(
                [
                    _codec(r),
                    f"{r.block} / {r.block_ms:.2f}",
                    f"{d.label} ({d.hearer})",
                    _f(med),
                    _f(p99),
                    _blocks(med, r),
                    _f(d.rtai_median_ms),
                    _f(d.rtai_p99_ms),
                    "—" if diff is None else f"{diff:+.2f}",
                    floor,
                    _per_min(d.xruns, d.peer_minutes)
                    + " / "
                    + _per_min(r.jack_xruns, r.jack_minutes),
                    _per_min(d.talk_xruns, talk_min)
                    + " / "
                    + _per_min(r.jack_talk_xruns, talk_min),
                    _f(d.cpu_pct, 1),
                ]
            )
    return _common.markdown_table(header, rows, "lrl" + "r" * (len(header) - 3))


def detail_table(runs: list[Run]) -> str:
    header = [
        "codec",
        "block",
        "direction",
        "load avg at start",
        "machine busy while talking, % of all cores (both peers)",
        "talk windows (unmatched)",
        "whole-run corr",
        "rtai seconds",
        "seconds paired (rtai − rig > 1 ms), worst ms",
        "rtai buffer ms",
        "rtai xruns (talk) / peer min",
        "JACK xruns (talk) / min",
        "concealed (talk)",
        "late",
        "rig glitches",
        "floor windows / corr",
        "sent kbit/s (RTP packets)",
        "codec alone, CPU % of a core",
    ]
    rows = []
    for r in runs:
        for d in r.dirs:
            rows.append(
                [
                    _codec(r),
                    str(r.block),
                    d.label,
                    r.load.split(" ")[0] if r.load else "—",
                    f"{_f(r.machine_busy_pct, 0)} ({_f(r.peers_pct, 0)})",
                    f"{d.leg.windows_loud} ({d.leg.windows_unmatched})",
                    f"{d.leg.run_corr:.4f}",
                    str(d.rtai_seconds),
                    _paired(d),
                    _f(d.rtai_buffer_ms),
                    f"{d.xruns} ({d.talk_xruns}) / {d.peer_minutes:.2f}",
                    f"{r.jack_xruns} ({r.jack_talk_xruns}) / {r.jack_minutes:.2f}",
                    f"{d.concealed} ({d.talk_concealed})",
                    str(d.late),
                    str(d.rig_glitches),
                    "—"
                    if r.floor is None
                    else f"{r.floor.delays_frames.size} / {r.floor.run_corr:.4f}",
                    _f(d.kbps, 1),
                    _f(r.codec_cpu_pct, 2),
                ]
            )
    return _common.markdown_table(header, rows, "lrl" + "r" * (len(header) - 3))


def codec_delay_seen(r: Run, d: Direction) -> int | None:
    """Codec delay (frames) the rig saw: median less floor less whole blocks of queue.

    The rest of a call's latency comes in whole blocks (every callback runs in the same
    JACK cycle), so what is left once the floor and the nearest whole number of blocks
    are taken out is the codec's delay. None without a codec delay or a measurement.
    """
    med = d.leg.pct_frames(50)
    if not r.codec_delay_frames or med is None or r.floor_frames is None:
        return None
    rest_blocks = round((med - r.floor_frames - r.codec_delay_frames) / r.block)
    return round(med - r.floor_frames - rest_blocks * r.block)


def cpu_summary(runs: list[Run]) -> list[str]:
    """The issue's CPU target, met or not, with the numbers behind it (first in the notes)."""
    codec, block, limit = CPU_TARGET
    notes = []
    for r in runs:
        if (r.codec, r.block) != (codec, block):
            continue
        cpus = [(d.hearer, d.cpu_pct) for d in r.dirs]
        measured = [c for _, c in cpus if c is not None]
        if len(measured) < 2:
            verdict = "could not be judged (a peer's CPU was not measured)"
        elif max(measured) < limit:
            verdict = "**met**"
        else:
            verdict = "**not met**"
        pcm = next((x for x in runs if (x.codec, x.block) == ("pcm", block)), None)
        pcm_cpu = [f"{d.cpu_pct:.1f}" for d in pcm.dirs if d.cpu_pct is not None] if pcm else []
        notes.append(
            f"CPU target ({codec} at {block}-frame blocks = {r.block_ms:g} ms, under {limit:g} % "
            f"of one core per peer): {verdict}; "
            + ", ".join(f"{h} {_f(c, 1)} %" for h, c in cpus)
            + " over the talk. The codec alone (encode + decode of one stream, timed "
            f"offline) takes {_f(r.codec_cpu_pct, 2)} % of a core"
            + (
                f"; PCM at {block} frames took {' and '.join(pcm_cpu)} % per peer"
                if pcm_cpu
                else ""
            )
            + f". Load average when this run started: {r.load or '—'}."
        )
    return notes


def codec_delay_notes(runs: list[Run]) -> list[str]:
    """Per Opus run: the codec delay the rig saw and how rtai's latency compares."""
    notes = []
    for r in runs:
        if not r.codec_delay_frames:
            continue
        seen, diffs = [], []
        for d in r.dirs:
            frames = codec_delay_seen(r, d)
            x = d.paired_diffs_ms
            diff = f"{float(np.median(x)):+.2f} ms" if x.size else "—"
            off = int(np.sum(np.abs(x) > DIFF_WARN_MS))
            seen.append(f"{d.label} {'—' if frames is None else frames}")
            diffs.append(
                f"{d.label} {diff} ({off} of {x.size} seconds off by > {DIFF_WARN_MS:g} ms)"
            )
        notes.append(
            f"{r.name}: the encoder reports a lookahead of {r.codec_delay_frames} frames "
            f"({r.codec_delay_ms:.2f} ms), which rtai subtracts from its capture stamps; "
            f"taking the floor and whole blocks out of the rig median leaves a codec delay "
            f"of {', '.join(seen)} frames. rtai − rig per second, median: {'; '.join(diffs)}."
        )
    return notes


def observations(runs: list[Run]) -> list[str]:
    """Things in this run that a reader should not miss."""
    notes = cpu_summary(runs) + codec_delay_notes(runs)
    for r in runs:
        if r.floor_frames is None:
            corr = "—" if r.floor is None else f"{r.floor.run_corr:.3f}"
            notes.append(f"{r.name}: the device loop could not be measured (correlation {corr}).")
        elif r.floor_frames != 2 * r.block:
            notes.append(
                f"{r.name}: the device loop took {r.floor_frames} frames "
                f"({r.floor_frames / r.block:g} blocks), not the 2 blocks expected."
            )
        if r.jack_xruns:
            notes.append(
                f"{r.name}: the JACK server had {r.jack_xruns} xruns "
                f"({r.jack_talk_xruns} while talking) in {r.jack_minutes:.2f} min."
            )
        for d in r.dirs:
            med, p99 = d.pct_ms(50), d.pct_ms(99)
            where = f"{r.name} {d.label}"
            if d.crashed:
                notes.append(f"{where}: the {d.hearer} peer failed: {d.crashed}")
            if d.codec != r.codec:
                notes.append(
                    f"{where}: asked for {r.codec}, but the {d.hearer} peer's call ran "
                    f"{d.codec or 'no codec it reported'}."
                )
            if med is None:
                notes.append(f"{where}: no window matched; the audio did not get through.")
                continue
            if d.leg.windows_unmatched:
                notes.append(
                    f"{where}: {d.leg.windows_unmatched} of {d.leg.windows_loud} talk windows "
                    "did not match (dropouts or concealment)."
                )
            if d.rig_glitches > RIG_GLITCHES_WARN:
                notes.append(
                    f"{where}: the speaking rig card saw {d.rig_glitches} stale or missed "
                    "JACK cycles; the rig is at its limit here, so take its numbers as "
                    "approximate (single glitches are corrected, bursts may not be)."
                )
            x = d.paired_diffs_ms
            off = np.abs(x) > DIFF_WARN_MS
            if d.rtai_median_ms is None:
                notes.append(f"{where}: rtai reported no latency while talking.")
            elif off.any():
                notes.append(
                    f"{where}: in {int(off.sum())} of {x.size} seconds rtai's latency_ms "
                    f"differs from the rig's by more than {DIFF_WARN_MS:g} ms ("
                    + ", ".join(f"{v:+.2f}" for v in x[off][:8])
                    + (", ..." if off.sum() > 8 else "")
                    + " ms)."
                )
            if (
                d.rtai_median_ms is not None
                and abs(d.rtai_median_ms - med) > DIFF_WARN_MS
                and not (x.size and abs(float(np.median(x))) > DIFF_WARN_MS)
            ):
                notes.append(
                    f"{where}: the run medians differ (rtai {d.rtai_median_ms:.2f} ms, rig "
                    f"{med:.2f} ms) although second by second they agree: the latency moved, "
                    "and rtai's median weighs every second, the rig's only the loud windows."
                )
            if (
                d.rtai_p99_ms is not None
                and p99 is not None
                and abs(d.rtai_p99_ms - p99) > DIFF_WARN_MS
            ):
                why = (
                    "rtai's per-block stamps are callback wall-clock times, so its p99 also "
                    "holds callback wake-up jitter and steps shorter than a rig window"
                    if d.rtai_p99_ms > p99
                    else "the rig saw windows later than anything rtai stamped"
                )
                notes.append(
                    f"{where}: p99 differs: rtai {d.rtai_p99_ms:.2f} ms, rig {p99:.2f} ms "
                    f"({d.rtai_p99_ms - p99:+.2f} ms; {why})."
                )
            if p99 - med > r.block_ms / 2:
                notes.append(
                    f"{where}: the latency moved during the run (median "
                    f"{med:.2f} ms, p99 {p99:.2f} ms)."
                )
            if d.talk_xruns:
                notes.append(
                    f"{where}: the {d.hearer} peer counted {d.talk_xruns} xruns "
                    f"while talking ({d.xruns} in its {d.peer_minutes:.2f} min)."
                )
            if d.rtai_buffer_ms is not None and d.rtai_buffer_ms > r.block_ms * 1.5:
                notes.append(
                    f"{where}: the {d.hearer} peer's jitter buffer held a standing queue of "
                    f"{d.rtai_buffer_ms:.2f} ms ({d.rtai_buffer_ms / r.block_ms:.1f} blocks, "
                    "median buffer_ms while talking)."
                )
            if d.concealed:
                notes.append(
                    f"{where}: the {d.hearer} peer concealed {d.concealed} blocks and "
                    f"counted {d.late} late packets in the call; {d.talk_concealed} of the "
                    "concealed blocks fell in the talk."
                )
    return notes


CODEC_COLORS = {"pcm": "tab:blue", "opus": "tab:red"}
CODEC_NAMES = {"pcm": "PCM (L16)", "opus": "Opus"}
DIRECTION_MARKERS = {"A→B": "o", "B→A": "^"}


def plot(runs: list[Run], path: Path, buffer_ms: str) -> None:
    """Latency vs block size: colour = codec, marker = direction, filled = rig, open = rtai."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    blocks = sorted({r.block for r in runs})
    xs = {b: float(i) for i, b in enumerate(blocks)}
    fig, ax = plt.subplots(figsize=(10, 6), dpi=110)
    slot = 0.8  # width of one block size's group of markers
    series = [(label, src) for label in DIRECTION_MARKERS for src in ("rig", "rtai")]
    trend: dict[str, list[tuple[float, float]]] = {}
    for b in blocks:
        here = [r for r in runs if r.block == b]
        width = slot / len(here)
        for k, r in enumerate(here):
            left = xs[b] - slot / 2 + k * width
            color = CODEC_COLORS.get(r.codec, "tab:green")
            rig_meds = []
            for j, (label, src) in enumerate(series):
                d = next((d for d in r.dirs if d.label == label), None)
                if d is None:
                    continue
                if src == "rig":
                    m, p99 = d.pct_ms(50), d.pct_ms(99)
                    if m is not None:
                        rig_meds.append(m)
                else:
                    m, p99 = d.rtai_median_ms, d.rtai_p99_ms
                if m is None:
                    continue
                ax.errorbar(
                    [left + (j + 0.5) * width / len(series)],
                    [m],
                    yerr=[[0.0], [0.0 if p99 is None else max(0.0, p99 - m)]],
                    fmt=DIRECTION_MARKERS[label],
                    color=color,
                    mfc=color if src == "rig" else "white",
                    ms=6,
                    capsize=3,
                )
            if rig_meds:
                trend.setdefault(r.codec, []).append((xs[b], float(np.mean(rig_meds))))
    for codec, pts in trend.items():
        px, py = zip(*sorted(pts), strict=True)
        ax.plot(px, py, "-", color=CODEC_COLORS.get(codec, "tab:green"), alpha=0.35, lw=1.5)
    floors = {r.block: r for r in runs if r.floor_ms is not None}
    fx = [xs[b] for b in blocks if b in floors]
    fb = [floors[b] for b in blocks if b in floors]
    ax.plot(fx, [r.floor_ms for r in fb], "k-", marker="_", ms=18)
    ax.plot(fx, [r.floor_ms + r.block_ms for r in fb], "k:")
    opus = sorted(
        (r for r in runs if r.codec_delay_frames and r.floor_ms is not None),
        key=lambda r: r.block,
    )
    if opus:
        ax.plot(
            [xs[r.block] for r in opus],
            [r.floor_ms + r.block_ms + r.codec_delay_ms for r in opus],
            ":",
            color=CODEC_COLORS["opus"],
        )
    handles = [
        Line2D([], [], color=c, marker="s", ls="-", alpha=0.8, label=CODEC_NAMES[name])
        for name, c in CODEC_COLORS.items()
        if any(r.codec == name for r in runs)
    ]
    handles += [
        Line2D([], [], color="gray", marker=m, ls="", label=label)
        for label, m in DIRECTION_MARKERS.items()
    ]
    handles += [
        Line2D([], [], color="gray", marker="o", ls="", label="measured by the rig (median)"),
        Line2D([], [], color="gray", marker="o", mfc="white", ls="", label="reported by rtai"),
        Line2D([], [], color="gray", marker="", ls="-", label="whisker: up to p99"),
        Line2D([], [], color="k", marker="_", ms=12, label="floor: device loop, measured"),
        Line2D([], [], color="k", ls=":", label="floor + 1 block"),
    ]
    if opus:
        lookahead = opus[0].codec_delay_ms
        handles.append(
            Line2D(
                [],
                [],
                color=CODEC_COLORS["opus"],
                ls=":",
                label=f"floor + 1 block + Opus delay ({lookahead:.1f} ms)",
            )
        )
    ax.set_xticks([xs[b] for b in blocks], [f"{b}\n({b * 1000 / RATE_HZ:.2f} ms)" for b in blocks])
    ax.set_xlabel("block size = JACK period, frames at 48 kHz")
    ax.set_ylabel("mouth-to-ear latency, ms")
    ax.set_title(
        f"rtai mouth-to-ear latency on the JACK rig, PCM and Opus (--buffer {buffer_ms}, "
        "loopback UDP)"
    )
    ax.set_ylim(bottom=0)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(handles=handles, fontsize=8, loc="upper left", ncol=2)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    fig.savefig(tmp, format="png")
    plt.close(fig)
    os.replace(tmp, path)


def source_state() -> str:
    """The commit the peers ran, and whether src/ had uncommitted changes."""

    def git(*argv: str) -> str | None:
        try:
            out = subprocess.run(
                ["git", "-C", str(_common.REPO), *argv], capture_output=True, text=True, timeout=10
            )
        except (OSError, subprocess.TimeoutExpired):
            return None
        return out.stdout.strip() if out.returncode == 0 else None

    rev = git("rev-parse", "--short", "HEAD")
    dirty = git("status", "--porcelain", "--untracked-files=no", "--", "src")
    return f"commit {rev or '?'}" + (" with uncommitted changes in src/" if dirty else "")


def section(
    runs: list[Run], args, info: dict[str, str], jack: str, notes: list[str], source: str
) -> str:
    argv = (
        ["--quick"]
        if args.quick
        else ([] if args.seconds == 20.0 else ["--seconds", f"{args.seconds:g}"])
    )
    if args.runs != DEFAULT_RUNS:
        argv += ["--runs", args.runs]
    if args.buffer != "0":
        argv += ["--buffer", args.buffer]
    cmd = _common.reproduce_command("bench/latency.py", argv)
    observed = "\n".join(f"- {n}" for n in notes) or (
        "- Nothing odd: no xruns, no crashes, rtai and the rig agree within 1 ms."
    )
    lookahead = next((r for r in runs if r.codec_delay_frames), None)
    opus_delay = (
        f"{lookahead.codec_delay_frames} frames = {lookahead.codec_delay_ms:.2f} ms"
        if lookahead
        else "312 frames = 6.5 ms"
    )
    return f"""## Mouth-to-ear latency on the JACK rig

Measured {_common.now_stamp()} on {_common.machine_line(info)}; {jack or "jackd"}.
rtai: {source}. Reproduce from the repository root with `{cmd}`.

Two peers (`rtai listen` on card rigA, `rtai call` on card rigB) talk over loopback UDP
through a private `jackd` (dummy driver, 48000 Hz, period = block size), with the codec
of the row given to both peers as `--codec` (Opus otherwise at rtai's defaults:
32 kbit/s VBR, complexity 9, voip, FEC auto, adaptation on) and
`--buffer {args.buffer}`. Both mics get {args.seconds:g} s of speech at once. Runs go
one after another, each with its own `jackd`. Each row is one direction, heard by the
named peer; its xruns and CPU are that peer's.

{main_table(runs)}

- **rig median / p99**: delay from a sample entering one card's microphone port to it
  leaving the other card's speaker port, in JACK frames, measured by cross-correlating
  {WINDOW_S:g} s windows (hop {HOP_S:g} s) of what was played with what was recorded;
  windows quieter than {QUIET_DBFS:g} dBFS (speech pauses) are skipped, and a window
  whose best match correlates under {MIN_WINDOW_CORR["pcm"]:g} (PCM) or
  {MIN_WINDOW_CORR["opus"]:g} (Opus: lossy, its clean windows reach 0.92..0.96) is
  counted as unmatched (a dropout, or a step of the latency inside it). Each window's
  delay counts from the JACK frame at which its first sample really entered: the rig
  logs every cycle it plays in and corrects for cycles it saw with a stale frame time or
  missed ("rig glitches" below). A window sees a {WINDOW_S:g} s average, so a change
  shorter than that hardly moves the rig p99.
- **codec**: `--codec` of both peers; the codec each call really ran (the `codec` field
  of the stats) is checked, and a row whose call ran another says so.
- **in blocks = floor (+ codec delay) + rest**: the rig median divided by the block
  duration, split into the device-loop floor, for Opus the codec's algorithmic delay,
  and what the call adds on top (queued blocks: a whole number of them).
- **Opus codec delay**: Opus's output lags its input by the encoder's lookahead
  ({opus_delay} at 48 kHz, as libopus reports it), added to the mouth-to-ear
  latency whatever the block size. rtai stamps each packet's capture time minus that
  lookahead, so its reported latency includes the delay and should agree with the rig's.
- **rtai median / p99**: what the receiving peer reports in `--stats-json` while the
  talk lasts (capture time carried in the RTP header extension to the DAC time of the
  playout block, per block): the median of its per-second `latency_ms` and the highest
  per-second `latency_ms_p99`.
- **rtai − rig, per second**: each stats line's `latency_ms` minus the median of the
  rig windows that lie inside the second it covers; the median of those differences.
  Comparing second by second keeps a latency that moved during the run from looking
  like a disagreement.
- **floor**: a bare PortAudio callback that copies its input block to its output
  through one rig card, opened as rtai opens it (same block size, `latency="low"`),
  measured like the rows: one block is captured before the callback can see it and one
  block plays after the callback wrote it. The JACK dummy driver has no hardware buffer,
  so we assume it adds nothing beyond its one-period cycle, and this loop is the whole
  device cost. A call adds at least the wait for the receiving peer's next callback
  after the packet lands: up to one block, depending on where in the JACK cycle each
  peer's callback runs.
- **`--buffer {args.buffer}`**: the jitter-buffer target in ms. 0 means playout starts at
  the first callback after the first packet and holds no block back. Blocks that pile up
  while a callback stalls (start-up, xruns) stay queued unless the queue outgrows the
  buffer's overflow limit, so the "rest" can differ by whole blocks from one run to the
  next and grow during a run; "rtai buffer ms" below shows the queue.
- **sent kbit/s** (details): RTP packets the speaking peer sent (payload, 12-byte
  header and the capture-time extension), median per second while talking.
- **xruns/min**: rtai's own count (PortAudio callback status flags, `xruns` in the stats)
  and the JACK server's (the rig's xrun callback); "whole run" divides the last count by
  the peer's (or the server's) lifetime, start-up and the floor measurement included,
  "talking" only the xruns during the {args.seconds:g} s of talk.
- **CPU**: user + system time of the peer process (all threads) over the talk, from
  `/proc/PID/stat`, in % of one core; the machine has {info["cores"]} cores shared by
  `jackd`, both peers and the rig (Python JACK clients in the benchmark process).
  The target for Opus at 10 ms blocks is under {CPU_TARGET[2]:g} % of one core per peer.
  "codec alone" in the details is the encoder and decoder of one stream timed offline
  in the benchmark process before the run (the rest of a peer's CPU is rtai's own
  work: audio callbacks, jitter buffer, RTP, RTCP, stats). The details give each run's
  1-minute load average at its start (it still carries the run before) and how busy
  all cores were while talking (from `/proc/stat`), with the two peers' part of it;
  the rest is `jackd`, the rig and whatever else ran on the machine.

What this run showed:

{observed}

Details:

{detail_table(runs)}

![mouth-to-ear latency vs block size](latency.png)
"""


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=20.0, help="talk per run (20)")
    p.add_argument("--quick", action="store_true", help="6 s of talk per run")
    which = p.add_mutually_exclusive_group()
    which.add_argument(
        "--runs",
        default=DEFAULT_RUNS,
        metavar="CODEC:BLOCK,...",
        help=f"codec and block size (frames) of each run, comma-separated ({DEFAULT_RUNS})",
    )
    which.add_argument(
        "--blocks",
        metavar="N,...",
        help="PCM only, at these block sizes: short for --runs pcm:N,...",
    )
    p.add_argument("--buffer", default="0", metavar="MS", help="rtai --buffer (0)")
    p.add_argument("--no-write", action="store_true", help="print only; leave docs/ alone")
    p.add_argument("--keep", metavar="DIR", help="keep the peers' logs and stats in DIR")
    p.add_argument("--loop-child", metavar="CARD", help=argparse.SUPPRESS)
    p.add_argument("--frame", type=int, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.loop_child:
        return loop_child(args.loop_child, args.frame)
    if args.quick:
        args.seconds = 6.0
    if args.blocks:
        args.runs = ",".join(f"pcm:{b.strip()}" for b in args.blocks.split(",") if b.strip())
    try:
        plan = parse_runs(args.runs)
    except ValueError as e:
        p.error(str(e))

    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from rtai.testing.jack_rig import jackd_available

    if not jackd_available():
        print("bench/latency.py: jackd is not installed; apt-get install jackd2", file=sys.stderr)
        return 1
    info = _common.machine()
    jack = _common.tool_version(["jackd", "--version"]).split(" tmpdir")[0]
    source = source_state()  # at the start: the tree may move while the runs go on
    runs: list[Run] = []
    with tempfile.TemporaryDirectory(prefix="rtai-bench-latency-") as tmp_dir:
        tmp = args.keep or tmp_dir
        with Progress(
            TextColumn("{task.description:<44}"),
            BarColumn(),
            TextColumn("{task.percentage:>3.0f}%"),
            TimeElapsedColumn(),
            refresh_per_second=4,  # the rig's callbacks share this process's GIL
        ) as progress:
            task = progress.add_task("starting", total=args.seconds * len(plan))
            for codec, block in plan:
                workdir = Path(tmp) / f"{codec}{block}"
                workdir.mkdir(parents=True, exist_ok=True)
                runs.append(
                    run_one(codec, block, args.seconds, args.buffer, workdir, progress, task)
                )
            progress.update(task, description="done")
    notes = observations(runs)
    print(main_table(runs))
    print()
    print(detail_table(runs))
    print()
    for n in notes:
        print("-", n)
    if not args.no_write:
        _common.write_section(SECTION, section(runs, args, info, jack, notes, source))
        plot(runs, PNG, args.buffer)
        print(
            f"\nwrote {_common.BENCHMARKS_MD.relative_to(_common.REPO)} and "
            f"{PNG.relative_to(_common.REPO)}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
