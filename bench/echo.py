"""Hands-free benchmark: echo cancellation, noise suppression and the voice gate.

Simulated rooms (src/rtai/testing/room.py): far-end speech leaves a soft-clipping
loudspeaker and reaches the microphone through a synthetic impulse response (a delay
of 10 to 150 ms, then a decaying noise tail with RT60 100 to 400 ms, 6 dB of echo
return loss), on top of near-end speech and noise. The capture pipeline
(src/rtai/processing.py) is driven exactly as the session drives it: per 10 ms
callback the block handed to the output is recorded with its DAC time, the
captured block processed with its ADC time (simulated card: output 20 ms after
input).

Measured:

* ERLE (echo return loss enhancement) on single talk: microphone power over output
  power, over the windows where the far end talks, from 2 s on; and the convergence
  time: from when on every far-talk 0.5 s window stays at 20 dB or more.
* Double talk: near-end PESQ-WB (against the clean near-end speech) while the far end
  talks, against the same pipeline with no echo, and against no processing.
* Noise suppression: noise taken out in speech pauses, SNR improvement, PESQ-WB.
* Voice gate (voice-activity DTX): every first syllable after at least 300 ms of
  silence must be sent from its first loud block; the share of blocks not sent.

Writes the ``echo`` section of docs/benchmarks.md and docs/echo.png. Run from the
repository root::

    .venv/bin/python bench/echo.py
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.signal import butter, lfilter

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common  # noqa: E402
from _quality_sim import pesq_available, to_score_rate  # noqa: E402

from rtai.audio.signals import speech  # noqa: E402
from rtai.processing import (  # noqa: E402
    NS_LEVEL,
    CapturePipeline,
    ProcessingOptions,
    RtaiEngine,
    VoiceGate,
    measure_delay_frames,
    webrtc_available,
)
from rtai.testing.room import echo_of, run_capture, synthetic_rir  # noqa: E402

SECTION = "echo"
PNG = _common.REPO / "docs" / "echo.png"
RATE = 48000
BLOCK = 480
OUT_LATENCY = 2 * BLOCK  # simulated card: a block leaves the speaker 20 ms after capture
WINDOW_S = 0.5
CONVERGED_DB = 20.0
GOAL_ERLE_DB = 30.0
GOAL_PESQ_DROP = 0.5
DITHER_DBFS = -80.0
ROOMS = [  # (name, RT60 s, delay s)
    ("small room", 0.10, 0.010),
    ("office", 0.20, 0.050),
    ("living room", 0.30, 0.100),
    ("reverberant hall", 0.40, 0.150),
]


def dbfs(x: np.ndarray) -> float:
    return 10 * math.log10(float(np.mean(np.asarray(x, np.float64) ** 2)) + 1e-20)


def noise(kind: str, n: int, level_dbfs: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(n)
    if kind == "fan":  # low-frequency hum and rumble
        b, a = butter(2, 400 / (RATE / 2))
        x = lfilter(b, a, x)
    elif kind == "street":  # broadband, tilted down, with slow swells
        b, a = butter(1, 1500 / (RATE / 2))
        x = lfilter(b, a, x) * (1 + 0.5 * np.sin(2 * np.pi * 0.3 * np.arange(n) / RATE))
    x *= 10 ** (level_dbfs / 20) / math.sqrt(float(np.mean(x**2)))
    return x


class CancelThenAec3:
    """For the record, not offered in rtai: rtai's echo canceller, then WebRTC's whole
    module (AEC3 included) on what is left, to see whether AEC3's near-end damage comes
    from its suppressor reacting to a large echo or to the far end itself."""

    name = "rtai+aec3"

    def __init__(self, opts: ProcessingOptions) -> None:
        import pywebrtc_audio

        self.frame_frames = RATE // 100
        self.speech_probability = 0.0
        self._own = RtaiEngine(RATE, 1, opts, use_webrtc=False)
        self._ap = pywebrtc_audio.AudioProcessor(
            sample_rate=RATE, num_channels=1, echo_cancellation=True,
            noise_suppression=opts.ns, auto_gain_control=opts.agc, ns_level=NS_LEVEL,
        )  # fmt: skip

    def process(self, near: np.ndarray, far: np.ndarray) -> np.ndarray:
        out = self._ap.process(self._own.process(near, far).reshape(-1), far.reshape(-1))
        self.speech_probability = float(self._ap.speech_probability)
        return out.reshape(-1, 1)


def pipeline(engine: str, block: int = BLOCK, **flags: bool) -> CapturePipeline:
    opts = ProcessingOptions(engine=engine, **flags)
    if engine != CancelThenAec3.name:
        return CapturePipeline(RATE, 1, block, opts)
    opts.engine = "auto"
    p = CapturePipeline(RATE, 1, block, opts, engine=CancelThenAec3(opts))
    p.engine_delay_frames = measure_delay_frames(CancelThenAec3(opts), 1)
    p.delay_s = p.engine_delay_frames / RATE
    return p


def pesq_wb(ref: np.ndarray, deg: np.ndarray) -> float | None:
    if not pesq_available():
        return None
    from pesq import PesqError, pesq

    try:
        return float(pesq(16000, to_score_rate(ref, RATE), to_score_rate(deg, RATE), "wb"))
    except PesqError:
        return None


# --- echo cancellation ------------------------------------------------------------------------


@dataclass
class EchoRow:
    engine: str
    room: str
    rt60_s: float
    delay_ms: float
    block: int
    erle_db: float  # after 2 s
    converge_s: float | None  # stays at CONVERGED_DB or more from then on
    converge_goal_s: float | None  # stays at GOAL_ERLE_DB or more from then on
    curve: list[tuple[float, float]]


def far_windows(far: np.ndarray) -> list[int]:
    w = round(WINDOW_S * RATE)
    return [s for s in range(0, len(far) - w + 1, w) if dbfs(far[s : s + w]) > -40.0]


def single_talk(engine: str, room: tuple, seconds: float, block: int = BLOCK) -> EchoRow:
    name, rt60, delay = room
    far = speech(RATE, seconds, 0)
    rir = synthetic_rir(RATE, rt60, delay, seed=int(rt60 * 100))
    mic = echo_of(far, rir) + noise("white", len(far), DITHER_DBFS, 7)
    p = pipeline(engine, block, aec=True)
    out, _ = run_capture(p, mic, far, OUT_LATENCY)
    d = round(p.delay_s * RATE)
    out = out[d:]
    mic = mic[: len(out)]
    w = round(WINDOW_S * RATE)
    curve = []
    for s in far_windows(far[: len(out)]):
        e = 10 * math.log10(np.sum(mic[s : s + w] ** 2) / (np.sum(out[s : s + w] ** 2) + 1e-20))
        curve.append(((s + w) / RATE, e))
    after = [s for s in far_windows(far[: len(out)]) if s >= 2.0 * RATE]
    num = sum(float(np.sum(mic[s : s + w] ** 2)) for s in after)
    den = sum(float(np.sum(out[s : s + w].astype(np.float64) ** 2)) for s in after)
    erle = 10 * math.log10(num / max(den, 1e-20))

    def stays_above(level_db: float) -> float | None:
        for i, (t, _) in enumerate(curve):
            if all(e >= level_db for _, e in curve[i:]):
                return t - WINDOW_S  # the start of the first window that stays above
        return None

    return EchoRow(
        engine,
        name,
        rt60,
        delay * 1000,
        block,
        erle,
        stays_above(CONVERGED_DB),
        stays_above(GOAL_ERLE_DB),
        curve,
    )


@dataclass
class TalkRow:
    engine: str
    room: str
    pesq_double: float | None
    pesq_no_echo: float | None
    pesq_unprocessed: float | None
    near_loss_db: float  # near-end level lost in double talk


def double_talk(
    engine: str,
    room: tuple,
    erl_db: float | None = 6.0,
    lead_s: float = 4.0,
    talk_s: float = 8.0,
    linear: bool = False,
    chain: bool = False,
) -> TalkRow:
    """``erl_db`` is the echo return loss (speaker to microphone); None: no coupling at
    all (the far end plays, nothing of it reaches the microphone). ``linear``: the
    loudspeaker does not compress; ``chain``: echo cancellation and noise suppression
    (AGC left out: over the 4 s of near-end silence it raises its gain towards the
    dither, and PESQ then scores the gain's recovery, not the processing)."""
    name, rt60, delay = room
    total = lead_s + talk_s
    far = speech(RATE, total, 0)
    near = np.concatenate([np.zeros(round(lead_s * RATE)), speech(RATE, talk_s, 1)])[: len(far)]
    rir = synthetic_rir(RATE, rt60, delay, -(erl_db or 0.0), seed=int(rt60 * 100))
    dither = noise("white", len(far), DITHER_DBFS, 8)
    echo = echo_of(far, rir, drive=1e-3 if linear else 2.0)
    mic = near + dither + (0.0 if erl_db is None else echo)
    if erl_db != 6.0:
        name += ", no coupling" if erl_db is None else f", ERL {erl_db:g} dB"
    if linear:
        name += ", linear speaker"
    flags = {"aec": True, "ns": chain}
    if chain:
        name += ", AEC+NS"
    seg = slice(round(lead_s * RATE), len(far))
    out, _ = run_capture(pipeline(engine, **flags), mic, far, OUT_LATENCY)
    quiet = np.zeros_like(far)
    clean_out, _ = run_capture(pipeline(engine, **flags), near + dither, quiet, OUT_LATENCY)
    ref = near[seg]
    return TalkRow(
        engine,
        name,
        pesq_wb(ref, out[seg]),
        pesq_wb(ref, clean_out[seg]),
        pesq_wb(ref, mic[seg]),
        dbfs(clean_out[seg]) - dbfs(out[seg]),
    )


def ideal_double_talk(room: tuple, removed_db: float, lead_s: float = 4.0) -> TalkRow:
    """The scale: no canceller, the echo at the microphone simply ``removed_db`` weaker
    (a perfect subtraction of all but that much), nothing else touched."""
    name, rt60, delay = room
    far = speech(RATE, lead_s + 8.0, 0)
    near = np.concatenate([np.zeros(round(lead_s * RATE)), speech(RATE, 8.0, 1)])[: len(far)]
    rir = synthetic_rir(RATE, rt60, delay, -6.0, seed=int(rt60 * 100))
    dither = noise("white", len(far), DITHER_DBFS, 8)
    echo = echo_of(far, rir)
    seg = slice(round(lead_s * RATE), len(far))
    ref = near[seg]
    out = near + dither + echo * 10 ** (-removed_db / 20)
    return TalkRow(
        "none (scale)",
        f"{name}, echo {removed_db:g} dB weaker",
        pesq_wb(ref, out[seg]),
        pesq_wb(ref, (near + dither)[seg]),
        pesq_wb(ref, (near + dither + echo)[seg]),
        0.0,
    )


TALK_SPURTS_S = [(2.5, 3.0), (1.5, 2.0), (3.0, 4.0), (2.0, 2.5), (1.0, 3.0)]  # (talk, listen)


def conversation(rate_hz: int = RATE) -> np.ndarray:
    """Near-end speech in talk spurts separated by listening silences, the way one side
    of a conversation sounds: about 45 % talk."""
    clip = speech(rate_hz, sum(t for t, _ in TALK_SPURTS_S) + 1.0, 1)
    parts, pos = [], 0
    for talk, listen in TALK_SPURTS_S:
        n = round(talk * rate_hz)
        parts += [clip[pos : pos + n], np.zeros(round(listen * rate_hz), dtype=np.float32)]
        pos += n
    return np.concatenate(parts)


# --- noise suppression --------------------------------------------------------------------


@dataclass
class NsRow:
    noise: str
    snr_in_db: float
    pause_reduction_db: float
    snr_gain_db: float
    pesq_noisy: float | None
    pesq_ns: float | None


def frame_levels(x: np.ndarray, frame: int = BLOCK) -> np.ndarray:
    m = len(x) // frame
    return 10 * np.log10(np.mean(x[: m * frame].reshape(m, frame) ** 2, axis=1) + 1e-20)


def ns_case(kind: str, snr_db: float) -> NsRow:
    near = conversation()
    lv = frame_levels(near)
    speech_db = 10 * math.log10(float(np.mean(10 ** (lv[lv > -40] / 10))))
    nz = noise(kind, len(near), speech_db - snr_db, 11)
    noisy = near + nz
    p = pipeline("auto", ns=True)
    out, _ = run_capture(p, noisy, np.zeros_like(near), OUT_LATENCY)
    out = out[round(p.delay_s * RATE) :]
    m = len(out) // BLOCK
    lv = lv[:m]
    act, pause = lv > -35, lv < -60
    fr = out[: m * BLOCK].reshape(m, BLOCK).astype(np.float64)
    fi = noisy[: m * BLOCK].reshape(m, BLOCK)
    p_out_pause = float(np.mean(fr[pause] ** 2))
    p_in_pause = float(np.mean(fi[pause] ** 2))
    p_out_act = float(np.mean(fr[act] ** 2))
    p_in_act = float(np.mean(fi[act] ** 2))
    snr_in = 10 * math.log10(max(p_in_act - p_in_pause, 1e-20) / p_in_pause)
    snr_out = 10 * math.log10(max(p_out_act - p_out_pause, 1e-20) / p_out_pause)
    skip = round(2.0 * RATE)  # let the noise estimate settle
    return NsRow(
        kind,
        snr_db,
        10 * math.log10(p_in_pause / p_out_pause),
        snr_out - snr_in,
        pesq_wb(near[skip:], noisy[skip:]),
        pesq_wb(near[skip : len(out)], out[skip:]),
    )


# --- voice gate ---------------------------------------------------------------------------


@dataclass
class GateRow:
    gate: str
    onsets: int
    clipped: int  # onsets whose first loud block was not sent
    onset_energy_sent_pct: float  # of the first 100 ms after each onset, worst case
    late_blocks_max: int
    not_sent_pct: float
    pause_not_sent_pct: float


def onsets(levels: np.ndarray, loud: float = -40.0, quiet: float = -55.0, gap: int = 30) -> list:
    """Blocks where speech starts after at least ``gap`` quiet blocks."""
    out, run = [], gap
    for k, v in enumerate(levels):
        if v >= loud and run >= gap:
            out.append(k)
        run = run + 1 if v < quiet else 0
    return out


def gate_case(label: str, onset_db: float) -> GateRow:
    near = conversation()
    mic = near + noise("fan", len(near), -60.0, 12)
    p = pipeline("auto", aec=True, ns=True, agc=True, vad=True)
    p.gate = VoiceGate(BLOCK / RATE, onset_db=onset_db)
    out, sent = run_capture(p, mic, np.zeros_like(near), OUT_LATENCY)
    # Block k of the output (and its send flag) holds the input from delay_s earlier.
    lv = frame_levels(np.concatenate([np.zeros(round(p.delay_s * RATE)), near]))[: len(sent)]
    found = onsets(lv)
    clipped, worst, late_max = 0, 100.0, 0
    for k in found:
        if not sent[k]:
            clipped += 1
        span = range(k, min(k + 10, len(sent)))
        e = np.array([10 ** (lv[j] / 10) for j in span])
        worst = min(worst, 100 * float(np.sum(e[sent[list(span)]])) / float(np.sum(e)))
        late = next((j - k for j in span if sent[j]), len(span))
        late_max = max(late_max, late)
    pause = lv < -60
    return GateRow(
        label,
        len(found),
        clipped,
        worst,
        late_max,
        100 * float(np.mean(~sent)),
        100 * float(np.mean(~sent[: len(pause)][pause])),
    )


# --- report ---------------------------------------------------------------------------------


def _f(v, fmt=".2f") -> str:
    return "n/a" if v is None else format(v, fmt)


def plot(rows: list[EchoRow], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 3.6))
    colours = ["tab:blue", "tab:orange", "tab:green", "tab:red"]
    for r in rows:
        if r.block != BLOCK:
            continue
        i = [room[0] for room in ROOMS].index(r.room)
        t, e = zip(*r.curve, strict=True)
        if r.engine not in ("rtai", "webrtc"):
            continue
        style = "-" if r.engine == "rtai" else "--"
        ax.plot(t, e, style, color=colours[i], lw=1, label=f"{r.engine}: {r.room}")
    ax.axhline(GOAL_ERLE_DB, color="grey", ls=":", lw=0.8)
    ax.axvline(2.0, color="grey", ls=":", lw=0.8)
    ax.set_xlabel("seconds of far-end speech (single talk)")
    ax.set_ylabel("ERLE per 0.5 s window (dB)")
    ax.set_title("Echo cancellation convergence in simulated rooms (48 kHz, 10 ms blocks)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=10.0, help="single-talk run length (10)")
    ap.add_argument("--no-write", action="store_true", help="print, do not touch docs/")
    args = ap.parse_args(argv)
    argv = sys.argv[1:] if argv is None else argv
    if not webrtc_available():
        print("bench/echo.py needs pywebrtc-audio (pip install pywebrtc-audio)", file=sys.stderr)
        return 2
    info = _common.machine()
    t0 = time.monotonic()
    engines = ["rtai", "webrtc"]
    echo_rows = [single_talk(e, room, args.seconds) for e in engines for room in ROOMS]
    echo_rows.append(single_talk("rtai", ROOMS[1], args.seconds, block=128))
    echo_rows.append(single_talk("webrtc", ROOMS[1], args.seconds, block=128))
    echo_rows.append(single_talk(CancelThenAec3.name, ROOMS[1], args.seconds))
    talk_rows = [double_talk(e, room) for e in engines for room in ROOMS]
    talk_rows += [double_talk(e, ROOMS[1], chain=True) for e in engines]
    talk_rows += [double_talk(CancelThenAec3.name, ROOMS[1])]
    talk_rows += [double_talk("rtai", ROOMS[1], linear=True)]
    talk_rows += [double_talk(e, ROOMS[1], erl) for e in engines for erl in (20.0, 40.0, None)]
    talk_rows += [ideal_double_talk(ROOMS[1], x) for x in (20.0, 30.0, 40.0, 50.0)]
    ns_rows = [ns_case(k, s) for k in ("white", "fan", "street") for s in (5.0, 15.0)]
    gate_rows = [
        gate_case("rtai: speech probability or energy onset, 300 ms hangover", 12.0),
        gate_case("speech probability only (no energy onset), 300 ms hangover", 1e9),
    ]
    elapsed = time.monotonic() - t0

    t1 = _common.markdown_table(
        ["engine", "room", "RT60 (ms)", "delay (ms)", "block", "ERLE after 2 s (dB)",
         f"stays ≥ {CONVERGED_DB:g} dB from (s)", f"stays ≥ {GOAL_ERLE_DB:g} dB from (s)",
         f"goal ≥ {GOAL_ERLE_DB:g} dB"],
        [[r.engine, r.room, f"{r.rt60_s * 1000:.0f}", f"{r.delay_ms:.0f}", str(r.block),
          f"{r.erle_db:.1f}", _f(r.converge_s, ".1f"), _f(r.converge_goal_s, ".1f"),
          "met" if r.erle_db >= GOAL_ERLE_DB else "not met"] for r in echo_rows],
        "llrrrrrrl",
    )  # fmt: skip
    t2 = _common.markdown_table(
        ["engine", "room", "PESQ-WB double talk", "PESQ-WB no echo", "PESQ-WB unprocessed",
         "near-end level lost (dB)", f"goal: within {GOAL_PESQ_DROP} of no echo"],
        [[r.engine, r.room, _f(r.pesq_double), _f(r.pesq_no_echo), _f(r.pesq_unprocessed),
          f"{r.near_loss_db:.1f}",
          "n/a" if r.pesq_double is None or r.pesq_no_echo is None else
          ("met" if r.pesq_no_echo - r.pesq_double <= GOAL_PESQ_DROP else "not met")]
         for r in talk_rows],
        "llrrrrl",
    )  # fmt: skip
    t3 = _common.markdown_table(
        ["noise", "input SNR (dB)", "noise removed in pauses (dB)", "SNR gain (dB)",
         "PESQ-WB noisy", "PESQ-WB after NS"],
        [[r.noise, f"{r.snr_in_db:.0f}", f"{r.pause_reduction_db:.1f}", f"{r.snr_gain_db:.1f}",
          _f(r.pesq_noisy), _f(r.pesq_ns)] for r in ns_rows],
        "lrrrrr",
    )  # fmt: skip
    t4 = _common.markdown_table(
        ["gate", "onsets", "first loud block not sent", "worst onset energy sent (first 100 ms)",
         "worst onset delay (blocks)", "blocks not sent", "pause blocks not sent"],
        [[r.gate, str(r.onsets), str(r.clipped), f"{r.onset_energy_sent_pct:.1f} %",
          str(r.late_blocks_max), f"{r.not_sent_pct:.0f} %", f"{r.pause_not_sent_pct:.0f} %"]
         for r in gate_rows],
        "lrrrrrr",
    )  # fmt: skip
    print(t1, t2, t3, t4, sep="\n\n")
    print(f"\n{elapsed:.0f} s")
    if args.no_write:
        return 0
    plot(echo_rows, PNG)
    import importlib.metadata as md

    command = _common.reproduce_command("bench/echo.py", argv)
    body = f"""## Hands-free: echo cancellation, noise suppression, voice gate

{_common.now_stamp()}; {_common.machine_line(info)}; pywebrtc-audio
{md.version("pywebrtc-audio")}; {elapsed:.0f} s. Reproduce: `{command}`

Simulated rooms (`src/rtai/testing/room.py`): far-end speech (espeak-ng) through a
soft-clipping loudspeaker (`tanh(2x)/2`) and a synthetic impulse response (pure delay,
then the direct sound and a decaying noise tail 10 dB below it with the given RT60;
6 dB echo return loss), plus near-end speech and noise. The capture pipeline
(`src/rtai/processing.py`) runs exactly as in a call: each 10 ms callback records the
block handed to the output with its DAC time (20 ms after capture on this simulated
card), and the sender processes the captured block against the reference placed by its
ADC time. `rtai` is the default engine: rtai's own echo canceller
(`src/rtai/dsp/aec.py`: frequency-domain Kalman filter over 600 ms with a measured
acoustic delay, which after each frame adapts once more on one earlier frame of the last
3 s (data reuse), a Hammerstein model of the loudspeaker's compression, and a
residual-echo suppressor that attenuates only bins where the remaining echo dominates),
then WebRTC's
NS/AGC when those are on; without pywebrtc-audio (`numpy`) the canceller is the same.
`webrtc` is WebRTC's whole module, AEC3 included, through pywebrtc-audio 0.2 (which
exposes no AEC3 settings). `rtai+aec3` (not offered in rtai, for the record) runs
rtai's canceller and then AEC3 on what is left.

**Single talk.** ERLE = microphone power / output power over the 0.5 s windows where
the far end talks, from 2 s on; the convergence columns give the start of the first
window after which every window keeps ERLE at that level ("n/a": never for the rest of
the run). Block 128 is the
PCM block size (re-framed to 10 ms; adds {(BLOCK - 32) / RATE * 1000:.1f} ms).

{t1}

![ERLE over time](echo.png)

**Double talk.** Far end talks throughout; near end talks from 4 s to 12 s (so the
canceller has had 4 s of far-end speech); PESQ-WB of the output against the clean
near-end speech over those 8 s (PESQ aligns the two itself; the no-echo column shows
that the pipeline's own delay and the dither do not cost anything). "No echo": the same
pipeline with the loudspeaker silent. "Unprocessed": the microphone itself. Further rows
keep the office room with noise suppression after the canceller (AEC+NS; AGC is left out
here, as over the 4 s of near-end silence it turns its gain up towards the dither and
PESQ then scores the gain coming back down), with a loudspeaker that does
not compress ("linear speaker"), or with the echo weakened (ERL 20 and 40 dB) or removed
(no coupling: the far end plays, nothing reaches the microphone). The "none (scale)"
rows process nothing: they are the microphone with the office echo made weaker by the
given amount, nothing else touched, to show what PESQ-WB asks for: a score within
0.5 of 4.55 needs the echo about 40 dB down during double talk with the near end
untouched.

{t2}

What sets the scores. WebRTC's AEC3 (through pywebrtc-audio, default settings) has
8 to 11 dB less single-talk ERLE than rtai's canceller, and it attenuates the near end in
the bands where the far end is active whether or not any echo is there (see its
no-coupling row): its suppressor, not the echo, sets its double-talk score, and feeding
it the output of rtai's canceller (rtai+aec3) does not change that. rtai's canceller
subtracts the echo and its suppressor leaves bins alone where the near end dominates,
so its score is set by the echo left under the near end after 4 s of far-end speech.
The goal (within 0.5 of the no-echo score, 4.05 here) needs about 40 dB under the near
end (scale rows); rtai's canceller meets it in all four rooms with the loudspeaker 6 dB
from the microphone, and with a weaker echo. The loudspeaker's compression costs
little: the linear-speaker row is 0.08 higher.

How the goal was reached (issue 8; the canceller run on its own at 48 kHz on these
rooms, or this script, numbers from those runs). Before, double talk scored 4.08 (small
room), 3.90, 3.81 and 3.63 (hall). Where the loss came from: the filter's own echo
attenuation (suppressor off; the echo over what the output holds of it, the near end
subtracted) was only 24 dB (office) and 19 dB (hall) in the fourth second of far-end
speech, and 22.4 dB over the office's double talk. The near end did not throw the filter
off: a filter frozen at 4 s did worse there (19.6 dB). The filter had not learnt enough
yet: with a linear loudspeaker, white noise instead of speech took it to 36 dB in the
hall by then, and the same 4 s of speech played twice to about 30 dB on the second pass.
Nor was the suppressor the limit: with its gains applied separately to the near end and
to the echo left, office scored 4.17 for the near end alone and 4.34 for the echo left
alone (3.95 together), and a suppressor told the true remaining echo (same gain rule)
4.17 (office) and 3.93 (hall). What raised the scores, in order: (1) data reuse: after
each frame the filter adapts once more on one frame picked at random from the last 3 s,
its error recomputed with the current filter (with the larger of that frame's
observation noise and its new error, and without lowering the filter's uncertainty
again): 4.12, 4.05, 3.93, 3.83, single-talk ERLE 46.5 to 50.3 dB; (2) halving the
suppressor's residual-echo estimate (it was still about 13 dB above the true remaining
echo during double talk, median over 0.5-10 kHz, hall): 4.13, 4.10, 4.01, 3.91; (3) a
more cautious Kalman step, the observation noise taken as the whole error power and
weighted 4 (it was the error not explained by the filter's uncertainty, weighted 2):
4.15, 4.18, 4.07, 4.08; (4) two replays per frame, their observation noise weighted 4 as
well, and no replay of frames where a converged filter took less than 6 dB out (the near
end talking): 4.20, 4.18, 4.15, 4.17 (this table). The filter's own attenuation is now
30 dB (office) and 25 dB (hall) in the fourth second, and 30 to 36 dB in the hall from 5
s on, against 21 to 23 dB before. With the two voices swapped (the near end's voice as
far end and the other way round; no echo 4.33) the scores are 4.13, 4.02, 3.96, 3.88,
all within 0.5 (before: 3.79, 3.47, 3.49, 3.43; with one replay as in (3) the hall
scored 3.74). CPU per 10 ms frame (process time, 48 kHz, speech with double talk, this
machine, other work running): the canceller alone (60 partitions) 1.22 ms before and
1.59 ms after in runs side by side, 1.3 times (the replays work in single precision, the
reference spectra sit in a ring instead of being shifted, the gradient constraint uses
scipy's single-precision FFT); the whole capture pipeline with NS, AGC and the voice
gate 1.37 ms before, 1.75 ms after. Double talk still moves the filter: on 16 kHz speech
through a linear room (tests/unit/test_aec.py) a filter at 43.5 dB over seconds 3 to 6
of far end holds 37.3 dB over the next 6 s of double talk (the canceller before: 33.1
and 31.5 dB). A moved echo path is relearnt: the restart test now compares microphone
and error energy smoothed over 0.1 s (frame by frame, a path 30 ms longer under speech
went unnoticed, as every onset and pause reset it); after an office-to-living-room
change at 6 s the output (suppressor on) was 40 dB under the microphone 1 to 2 s after
it and 49 dB 3 to 4 s after it (with the frame-by-frame test and one replay: 1.0 and
20.4 dB; before this work: 3.4 and 40.6 dB). Tried and left out: a two-filter scheme (a
foreground filter taking the adapting filter's coefficients when its error is smaller
over 0.2 s, and restoring it when 6 dB worse): copying whenever the error is smaller
protects nothing, since the adapting filter's error is smaller partly because it has
cancelled some of the near end; copying only when 3 dB smaller held a long converged
linear filter through double talk (16 kHz speech: 41.8 dB instead of 35 with one replay)
but cost 0.3 here (office 3.85, hall 3.82), where the filter is still learning at 4 s;
replaying the best-explained of 4 candidate frames instead of a random one (0.05 to 0.15
lower); more process noise in the Kalman filter (tracking 0.9995, before the replays:
about 0.1 lower); with one replay, a replay window of 1.5 or 6 s instead of 3 s, or the
observation noise weighted 6 instead of 4 (within 0.03); with one replay as in (3), the
suppressor's gain averaged over 7 or 13 bins instead of 9, its powers pooled over 5, a
slower release (0.5) or a -40 dB floor (all within 0.04, none better everywhere).

Earlier, what raised the double-talk scores by about 0.4 (from 3.21-3.69 to 3.63-4.08, ERLE the
same or higher; measured with this script on the office room and the reverberant hall,
then all four rooms): the suppressor's gain is computed from error and residual-echo
powers summed over 3 neighbouring bins and then averaged over 9 bins (450 Hz), instead
of per bin from powers smoothed over time; the residual estimate's over-subtraction
lowered from 3 to 1, the gain's recovery made faster (release 0.6 to 0.3) and its
floor lowered from -20 to -30 dB, which helps once the gain is averaged (with per-bin
gains, -30 dB had cost 0.13). On the office room: the gain averaged over 5, 7, 9 or 13
bins scored 3.85, 3.87, 3.86, 3.80 (floor -20 dB); smoothing the powers over time as
well (0.2) cost 0.08; pooling the powers over 7 bins without averaging the gain scored
3.69. The gain averaged without pooling the powers scored up to 0.03 higher, but took
1.2 dB off a noise-like near end in the canceller's unit test (tests/unit/test_aec.py;
the pooled version 0.55 dB, as before) and was not kept.

Tried on the office room while building the canceller and left out (numbers from
those runs, not reproduced here): a normalised block-LMS filter instead of the Kalman
filter (linear path, no suppressor: 13 dB ERLE after 10 s against 22 dB); a second,
background filter copied into the foreground only when it cancels better (the
Speex/MDF scheme; on top of the Kalman filter it lowered double-talk PESQ from 2.76 to
2.64); one leak factor for all bins instead of one per bin (2.55 against 2.76, ERLE
21 dB against 31 dB); a decision-directed Wiener gain and a faster gain release (within
0.05 PESQ, 1 to 3 dB less ERLE); a deeper floor in echo-only frames (within 0.05 PESQ
and 0.5 dB ERLE); powers up to x^7 (the least squares becomes ill-conditioned: lower
ERLE). Two parts proved necessary: without the cap on the filter's uncertainty (and
with a delay finder that trusted a single peak), a weak or absent echo left the
uncertainty high and the suppressor took the near end down (no coupling: PESQ-WB 1.55,
ERL 40 dB: 1.58); powers not orthogonalised against x let the loudspeaker model
mimic a gain error and grow on a linear path.

**Noise suppression** (WebRTC NS, level {NS_LEVEL} of 0..3, alone): the conversation
signal below (talk spurts and pauses) plus noise at the given SNR (white; fan =
low-passed at 400 Hz; street = low-passed at 1.5 kHz, swelling). Pauses: 10 ms blocks
where the clean speech is below -60 dBFS; SNR gain = output SNR − input SNR, each as
(power in speech blocks − power in pauses) / power in pauses. PESQ-WB from 2 s on.

{t3}

**Voice gate (voice-activity DTX)** with the device defaults (rtai's AEC, WebRTC's NS,
AGC and speech probability, the gate): one
side of a conversation, {sum(t for t, _ in TALK_SPURTS_S):g} s of speech in
{len(TALK_SPURTS_S)} talk spurts with {sum(q for _, q in TALK_SPURTS_S):g} s of listening
between them, over fan noise at -60 dBFS. An onset is a block at -40 dBFS or more after
300 ms below -55 dBFS (the input shifted by the pipeline's measured delay, so block k
of the output is compared with the input it holds); clipped if that first loud block is
not sent. Blocks not sent cost nothing on the wire.

{t4}
"""
    _common.write_section(SECTION, body)
    print(f"wrote the {SECTION} section of {_common.BENCHMARKS_MD} and {PNG.name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
