"""Speech quality under packet loss: PESQ-WB and STOI through rtai's real media path.

Speech (espeak-ng, two voices alternating, 48 kHz mono) goes through the real encoder,
RTP packetizer, netsim impairment model and receiver (jitter buffer, decoder, FEC,
concealment) on a simulated clock: see ``bench/_quality_sim.py``. The same impaired
Opus-with-FEC packets are then played in real time over loopback UDP into GStreamer's
receiver (rtpjitterbuffer + opusdec) as a reference: see ``bench/_quality_gst.py``.

Every output is aligned with the input by cross-correlation; the lag is the
mouth-to-ear delay on the simulated clock. Both are resampled to 16 kHz and scored
with PESQ wide-band (ITU-T P.862.2, the ``pesq`` package, if installed) and STOI
(``pystoi``).

Parts of a run:

1. Main table: modes (PCM, PCM + RED, Opus without FEC, Opus with FEC and a fixed loss
   hint, rtai's default adaptive Opus) x conditions (random loss 0-20 %, bursty loss
   5 and 10 %), plus GStreamer on the Opus-FEC packets.
2. Targets from the issue (PESQ-WB at 0, 10 and 20 % random loss) and probes for the
   ceiling: higher bit rates, complexity 10, other loss hints, a bandwidth cap.
3. Defaults sweep: block 10 / 20 ms x 24 / 32 / 48 kbit/s at 0 and 10 % loss.

Writes the ``quality`` section of docs/benchmarks.md and docs/quality.png. Run from the
repository root::

    .venv/bin/python bench/quality.py            # ~22 s of speech per run, a few minutes
    .venv/bin/python bench/quality.py --quick    # 8 s of speech, main table only
"""

from __future__ import annotations

import argparse
import importlib.metadata
import os
import sys
import tempfile
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common  # noqa: E402
import _quality_gst as gst  # noqa: E402
import _quality_sim as qs  # noqa: E402
from _quality_sim import Condition, Mode  # noqa: E402
from _quality_sim import Path as NetPath

SECTION = "quality"
PNG = _common.REPO / "docs" / "quality.png"

CONDITIONS = [
    Condition(0),
    Condition(2),
    Condition(5),
    Condition(10),
    Condition(20),
    Condition(5, 3),
    Condition(10, 3),
]
TARGET_CONDITIONS = [Condition(0), Condition(10), Condition(20)]
SWEEP_CONDITIONS = [Condition(0), Condition(10)]

OPUS_NOFEC = Mode("opus", "Opus 32k, no FEC")
OPUS_FEC = Mode("opus-fec", "Opus 32k, FEC, hint = loss", fec="on", loss_hint="loss")
OPUS_AUTO = Mode(
    "opus-auto",
    "Opus 32k, rtai default (FEC auto + adaptation)",
    fec="auto",
    adaptive=True,
    redundancy=None,
)
OPUS_DEFAULT = replace(
    OPUS_AUTO,
    key="opus-default",
    label="Opus 48k, rtai default (FEC auto + adaptation)",
    bitrate_kbps=48,
)
MODES = [
    Mode("pcm", "PCM L16, no protection", codec="pcm"),
    Mode(
        "pcm-red",
        "PCM L16 + RED, adaptive (rtai default for PCM)",
        codec="pcm",
        fec="auto",
        adaptive=True,
        redundancy=None,
    ),
    OPUS_NOFEC,
    OPUS_FEC,
    OPUS_AUTO,
    OPUS_DEFAULT,
]
GST_FEC = "gst"
GST_PLC = "gst-plc"
GST_LABELS = {
    GST_FEC: "GStreamer rtpjitterbuffer+opusdec (same packets)",
    GST_PLC: "GStreamer, opusdec use-inband-fec=false (same packets)",
}

PROBES = [
    replace(
        OPUS_FEC, key="p-cx10", label="Opus 32k FEC (hint = loss), complexity 10", complexity=10
    ),
    replace(OPUS_FEC, key="p-48", label="Opus 48k FEC (hint = loss)", bitrate_kbps=48),
    replace(OPUS_FEC, key="p-64", label="Opus 64k FEC (hint = loss)", bitrate_kbps=64),
    replace(
        OPUS_NOFEC,
        key="p-48-nofec-hint",
        label="Opus 48k, FEC off, hint = loss",
        bitrate_kbps=48,
        loss_hint="loss",
    ),
    replace(OPUS_FEC, key="p-hint2", label="Opus 32k FEC, hint fixed 2 %", loss_hint=2),
    replace(
        OPUS_NOFEC, key="p-nofec-hint", label="Opus 32k, FEC off, hint = loss", loss_hint="loss"
    ),
    replace(OPUS_FEC, key="p-hint25", label="Opus 32k FEC, hint fixed 25 %", loss_hint=25),
    replace(
        OPUS_AUTO,
        key="p-auto-wb",
        label="Opus 32k rtai default, audio capped at wide-band*",
        max_bandwidth="wb",
    ),
    replace(
        OPUS_FEC,
        key="p-64-wb",
        label="Opus 64k FEC (hint = loss), audio capped at wide-band*",
        bitrate_kbps=64,
        max_bandwidth="wb",
    ),
]
SWEEP = [
    replace(
        OPUS_AUTO,
        key=f"s-{ms}-{kbps}",
        label=f"{ms} ms, {kbps} kbit/s",
        block_ms=float(ms),
        bitrate_kbps=float(kbps),
    )
    for ms in (10, 20)
    for kbps in (24, 32, 48)
]
TARGETS = {0.0: 4.2, 10.0: 3.3, 20.0: 2.8}  # PESQ-WB, Opus 32 kbit/s 10 ms, random loss
MATCH_PESQ = 0.05  # |rtai - GStreamer| within this counts as a match
MATCH_STOI = 0.005


# --- one result row -------------------------------------------------------------------------


@dataclass
class Row:
    group: str  # main | probe | sweep | gst
    key: str
    label: str
    cond: Condition
    pesq: float | None
    stoi: float | None
    kbps: float
    delay_ms: float
    added_ms: float
    loss_pct: float
    corr: float
    lag_spread_ms: float
    block_ms: float
    codec: str = "opus"
    nominal_kbps: float = 32.0
    lost_blocks: int | None = None
    fec_blocks: int | None = None
    final: dict = field(default_factory=dict)
    extra: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Settings:
    seconds: float
    path: NetPath
    buffer_ms: float
    keep: str | None


_SIGNAL: np.ndarray | None = None
_SETTINGS: Settings | None = None


def _init_worker(signal: np.ndarray, settings: Settings) -> None:
    global _SIGNAL, _SETTINGS
    _SIGNAL, _SETTINGS = signal, settings


def _played_span(kinds: np.ndarray) -> tuple[int, int]:
    normal = np.flatnonzero(kinds == qs.TICK_NORMAL)
    return (int(normal[0]), int(normal[-1]) + 1) if normal.size else (0, 0)


def sim_job(group: str, mode: Mode, cond: Condition, want_datagrams: bool = False):
    """Simulate and score one (mode, condition); runs in a worker process."""
    assert _SIGNAL is not None and _SETTINGS is not None
    st = _SETTINGS
    run = qs.simulate(
        _SIGNAL, mode, cond, st.path, buffer_ms=st.buffer_ms, keep_datagrams=want_datagrams
    )
    sc = qs.score(_SIGNAL, run.output, run.t_out0_s)
    lo, hi = _played_span(run.kinds)
    span = run.kinds[lo:hi]
    lost = int(np.count_nonzero((span == qs.TICK_CONCEAL) | (span == qs.TICK_FEC)))
    fec = int(np.count_nonzero(span == qs.TICK_FEC))
    if st.keep:
        _write_wav(Path(st.keep) / f"rtai-{group}-{mode.key}-{cond.key}.wav", run.output)
    row = Row(
        group=group,
        key=mode.key,
        label=mode.label,
        cond=cond,
        pesq=sc.pesq_wb,
        stoi=sc.stoi,
        kbps=run.bitrate_kbps,
        delay_ms=sc.delay_ms,
        added_ms=sc.delay_ms - mode.block_ms - st.path.delay_ms,
        loss_pct=run.loss_seen_pct,
        corr=sc.correlation,
        lag_spread_ms=sc.lag_spread_ms,
        block_ms=mode.block_ms,
        codec=mode.codec,
        nominal_kbps=mode.bitrate_kbps,
        lost_blocks=lost,
        fec_blocks=fec,
        final=dict(run.final),
        extra={
            "reports": run.reports_to_sender,
            "decisions": len(run.decisions),
            "late": run.jitter.get("late", 0),
            "lookahead_ms": run.lookahead_frames * 1000.0 / run.rate_hz,
            "header_bytes": (run.sent_bytes - run.payload_bytes) / max(1, run.sent_packets),
            "payload_kbps": run.payload_bytes * 8.0 / run.duration_s / 1000.0,
        },
    )
    return row, (run.datagrams if want_datagrams else None)


def gst_score_job(key: str, cond: Condition, output: np.ndarray, t_out0_s: float, fec_row: Row):
    assert _SIGNAL is not None and _SETTINGS is not None
    sc = qs.score(_SIGNAL, output, t_out0_s)
    return Row(
        group="gst",
        key=key,
        label=GST_LABELS[key],
        cond=cond,
        pesq=sc.pesq_wb,
        stoi=sc.stoi,
        kbps=fec_row.kbps,
        delay_ms=sc.delay_ms,
        added_ms=sc.delay_ms - fec_row.block_ms - _SETTINGS.path.delay_ms,
        loss_pct=fec_row.loss_pct,
        corr=sc.correlation,
        lag_spread_ms=sc.lag_spread_ms,
        block_ms=fec_row.block_ms,
    )


def _write_wav(path: Path, x: np.ndarray, rate_hz: int = qs.RATE_HZ) -> None:
    import soundfile as sf

    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, np.clip(x, -1.0, 1.0), rate_hz, subtype="PCM_16")


# --- formatting -------------------------------------------------------------------------------


def f_pesq(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.2f}"


def f_stoi(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.3f}"


def find(rows: list[Row], key: str, cond: Condition) -> Row | None:
    return next((r for r in rows if r.key == key and r.cond == cond), None)


def comparison_table(rows: list[Row]) -> str:
    header = [
        "condition",
        "loss seen %",
        "rtai PESQ-WB",
        "GStreamer PESQ-WB",
        "Δ PESQ",
        "rtai STOI",
        "GStreamer STOI",
        "rtai delay ms",
        "GStreamer delay ms",
        "GStreamer PLC-only PESQ / delay ms",
        "verdict",
    ]
    out = []
    for cond in CONDITIONS:
        r, g, p = (
            find(rows, OPUS_FEC.key, cond),
            find(rows, GST_FEC, cond),
            find(rows, GST_PLC, cond),
        )
        if r is None or g is None:
            continue
        dp = None if r.pesq is None or g.pesq is None else r.pesq - g.pesq
        out.append(
            [
                cond.label,
                f"{r.loss_pct:.1f}",
                f_pesq(r.pesq),
                f_pesq(g.pesq),
                "n/a" if dp is None else f"{dp:+.2f}",
                f_stoi(r.stoi),
                f_stoi(g.stoi),
                f"{r.delay_ms:.1f}",
                f"{g.delay_ms:.1f}",
                "n/a" if p is None else f"{f_pesq(p.pesq)} / {p.delay_ms:.1f}",
                verdict(r, g),
            ]
        )
    return _common.markdown_table(header, out, "lrrrrrrrrrl")


def verdict(r: Row, g: Row) -> str:
    if r.pesq is not None and g.pesq is not None:
        if r.pesq > g.pesq + MATCH_PESQ:
            q = "beats"
        elif r.pesq < g.pesq - MATCH_PESQ:
            q = "worse"
        else:
            q = "matches"
    elif r.stoi is not None and g.stoi is not None:
        q = (
            "matches"
            if abs(r.stoi - g.stoi) <= MATCH_STOI
            else ("beats" if r.stoi > g.stoi else "worse")
        )
    else:
        q = "?"
    d = (
        "less delay"
        if r.delay_ms < g.delay_ms - 1.0
        else ("more delay" if r.delay_ms > g.delay_ms + 1.0 else "same delay")
    )
    return f"rtai {q}, {d}"


def pivot(rows: list[Row], keys: list[tuple[str, str]], metric: str) -> str:
    header = ["mode", *[c.label for c in CONDITIONS]]
    out = []
    for key, label in keys:
        line = [label]
        for cond in CONDITIONS:
            r = find(rows, key, cond)
            v = None if r is None else getattr(r, metric)
            line.append(f_pesq(v) if metric == "pesq" else f_stoi(v))
        out.append(line)
    return _common.markdown_table(header, out, "l" + "r" * len(CONDITIONS))


def detail_table(rows: list[Row], keys: list[str]) -> str:
    header = [
        "condition",
        "mode",
        "PESQ-WB",
        "STOI",
        "kbit/s sent",
        "delay ms",
        "added ms",
        "lost blocks (FEC-rebuilt)",
        "encoder at the end",
    ]
    out = []
    for cond in CONDITIONS:
        for key in keys:
            r = find(rows, key, cond)
            if r is None:
                continue
            lost = "–" if r.lost_blocks is None else f"{r.lost_blocks} ({r.fec_blocks})"
            out.append(
                [
                    cond.label,
                    r.label,
                    f_pesq(r.pesq),
                    f_stoi(r.stoi),
                    f"{r.kbps:.1f}",
                    f"{r.delay_ms:.1f}",
                    f"{r.added_ms:.1f}",
                    lost,
                    final_text(r),
                ]
            )
    return _common.markdown_table(header, out, "llrrrrrrl")


def final_text(r: Row) -> str:
    f = r.final
    if not f:
        return "–"
    if "fec" not in f:  # PCM
        return f"RED {f.get('redundancy', 0)}"
    return (
        f"{f.get('bitrate_bps', 0) / 1000:g}k, FEC {'on' if f['fec'] else 'off'}, "
        f"hint {f.get('loss_pct', 0)} %"
    )


def probes_table(rows: list[Row], keys: list[tuple[str, str]]) -> str:
    header = ["mode", *[f"PESQ-WB at {c.label}" for c in TARGET_CONDITIONS]]
    header += ["STOI at 10 %", "kbit/s at 10 %"]
    out = []
    for key, label in keys:
        line = [label]
        for cond in TARGET_CONDITIONS:
            r = find(rows, key, cond)
            line.append(f_pesq(None if r is None else r.pesq))
        r10 = find(rows, key, Condition(10))
        line += [
            f_stoi(None if r10 is None else r10.stoi),
            "n/a" if r10 is None else f"{r10.kbps:.1f}",
        ]
        out.append(line)
    return _common.markdown_table(header, out, "l" + "r" * (len(header) - 1))


def sweep_table(rows: list[Row]) -> str:
    header = ["block", "bit rate"]
    for c in SWEEP_CONDITIONS:
        header += [f"PESQ-WB {c.label}", f"STOI {c.label}"]
    header += ["kbit/s sent at 10 %", "delay ms"]
    out = []
    for m in SWEEP:
        line = [f"{m.block_ms:g} ms", f"{m.bitrate_kbps:g} kbit/s"]
        for c in SWEEP_CONDITIONS:
            r = find(rows, m.key, c)
            line += [f_pesq(None if r is None else r.pesq), f_stoi(None if r is None else r.stoi)]
        r10 = find(rows, m.key, Condition(10))
        r0 = find(rows, m.key, Condition(0))
        line += [
            "n/a" if r10 is None else f"{r10.kbps:.1f}",
            "n/a" if r0 is None else f"{r0.delay_ms:.1f}",
        ]
        out.append(line)
    return _common.markdown_table(header, out, "ll" + "r" * (len(header) - 2))


# --- reading the results ----------------------------------------------------------------------


def targets_table(rows: list[Row]) -> tuple[str, list[str]]:
    """The issue's targets, met or not, and the best Opus configuration seen for each."""
    header = [
        "loss",
        "target PESQ-WB",
        "rtai default",
        "Opus FEC, hint = loss",
        "met?",
        "best Opus at 32 kbit/s",
        "best Opus seen (any rate)",
    ]
    out, notes = [], []
    for cond in TARGET_CONDITIONS:
        target = TARGETS[cond.loss_pct]
        auto, fec = find(rows, OPUS_AUTO.key, cond), find(rows, OPUS_FEC.key, cond)
        opus = [
            r for r in rows if r.cond == cond and r.group != "gst" and r.codec == "opus" and r.pesq
        ]
        best = max(opus, key=lambda r: r.pesq or -1.0, default=None)
        at32 = [r for r in opus if r.nominal_kbps == 32 and r.block_ms == 10]
        best32 = max(at32, key=lambda r: r.pesq or -1.0, default=None)
        vals = [r.pesq for r in (auto, fec) if r is not None and r.pesq is not None]
        met = "n/a (no PESQ)" if not vals else ("met" if max(vals) >= target else "not met")

        def desc(r: Row | None) -> str:
            if r is None:
                return "n/a"
            return f"{f_pesq(r.pesq)}: {r.label}, {r.block_ms:g} ms, {r.kbps:.0f} kbit/s sent"

        out.append(
            [
                cond.label,
                f"≥ {target:g}",
                f_pesq(None if auto is None else auto.pesq),
                f_pesq(None if fec is None else fec.pesq),
                met,
                desc(best32),
                desc(best),
            ]
        )
        if best is not None and best.pesq is not None:
            reach = "reaches" if best.pesq >= target else "still misses"
            notes.append(f"{cond.label}: the best Opus configuration tried {reach} the target.")
    return _common.markdown_table(header, out, "lrrrlll"), notes


def target_notes(rows: list[Row]) -> list[str]:
    """Why the targets are met or missed, from the probe rows (numbers from this run)."""

    def pesq(key: str, loss: float) -> float | None:
        r = find(rows, key, Condition(loss))
        return None if r is None else r.pesq

    notes = []
    fb, wb, p48, p64 = (
        pesq(OPUS_AUTO.key, 0),
        pesq("p-auto-wb", 0),
        pesq("p-48", 0),
        pesq("p-64", 0),
    )
    if None not in (fb, wb, p48, p64):
        notes.append(
            f"No loss: at 32 kbit/s libopus codes full-band hybrid audio (SILK below 8 kHz, "
            f"CELT above) and spends part of the rate above 8 kHz, where PESQ-WB does not "
            f"listen: {fb:.2f}. The same 32 kbit/s kept to wide-band scores {wb:.2f}; full-band "
            f"needs about 48 kbit/s ({p48:.2f}) to 64 kbit/s ({p64:.2f}) to get there. "
            "Complexity 10 changes nothing here (the same bits as 9)."
        )
    fec10 = find(rows, OPUS_FEC.key, Condition(10))
    if fec10 is not None and fec10.lost_blocks:
        share = 100.0 * (fec10.fec_blocks or 0) / fec10.lost_blocks
        best32 = max(
            (
                r
                for r in rows
                if r.cond == Condition(10)
                and r.codec == "opus"
                and r.nominal_kbps == 32
                and r.block_ms == 10
                and r.pesq is not None
                and r.group != "gst"
            ),
            key=lambda r: r.pesq,
            default=None,
        )
        p64_10, w64_10 = pesq("p-64", 10), pesq("p-64-wb", 10)
        p64_20, w64_20 = pesq("p-64", 20), pesq("p-64-wb", 20)
        text = (
            f"Loss: FEC rebuilt {share:.0f} % of the blocks lost at 10 % (the rest were "
            "concealed: a packet after another lost one, or an unvoiced or silent block "
            "that libopus sends without an LBRR copy), and libopus's packet-loss "
            "concealment scores low on PESQ-WB. At 32 kbit/s, 10 ms, nothing tried "
            "reaches the 10 % target"
        )
        if best32 is not None:
            text += f" (best: {best32.label}, {best32.pesq:.2f})"
        if None not in (p64_10, w64_10, p64_20, w64_20):
            text += (
                f". It takes 64 kbit/s with FEC: {p64_10:.2f} at 10 % and {p64_20:.2f} at "
                f"20 %, {w64_10:.2f} and {w64_20:.2f} kept to wide-band"
            )
        notes.append(text + ".")
    return notes


def observations(rows: list[Row], gst_note: str | None) -> list[str]:
    notes = []
    if gst_note:
        notes.append(gst_note)
    pairs = [(find(rows, OPUS_FEC.key, c), find(rows, GST_FEC, c)) for c in CONDITIONS]
    pairs = [(r, g) for r, g in pairs if r is not None and g is not None]
    if pairs:
        verdicts = [verdict(r, g) for r, g in pairs]
        worse = [r.cond.label for (r, g), v in zip(pairs, verdicts, strict=True) if "worse" in v]
        more = [
            r.cond.label for (r, g), v in zip(pairs, verdicts, strict=True) if "more delay" in v
        ]
        dps = [r.pesq - g.pesq for r, g in pairs if r.pesq is not None and g.pesq is not None]
        dd = [g.delay_ms - r.delay_ms for r, g in pairs]
        goal = "met" if not worse and not more else "not met"
        notes.append(
            f"Goal 'rtai matches or beats GStreamer at every loss rate with no more delay': "
            f"{goal}. PESQ-WB rtai − GStreamer ranges {min(dps):+.2f} … {max(dps):+.2f}"
            if dps
            else f"Goal: {goal}."
        )
        notes[-1] += (
            f"; GStreamer plays {min(dd):.0f}–{max(dd):.0f} ms later than rtai on the same packets."
        )
        plc = [find(rows, GST_PLC, c) for c in CONDITIONS]
        plc = [p for p in plc if p is not None]
        if plc:
            notes.append(
                "GStreamer's extra delay is opusdec's: with `use-inband-fec=true` it reports "
                "a fixed 120 ms latency (the longest Opus packet it may have to wait for), "
                "and the sink renders that much later; with FEC off (PLC-only column) it "
                f"plays at {np.median([p.delay_ms for p in plc]):.1f} ms, like rtai, but "
                "loses what FEC buys. rtai rebuilds a lost block from the next packet at "
                "playout time, when that packet is already in the jitter buffer, so FEC "
                "costs it no delay at all."
            )
    nofec0, h25 = find(rows, OPUS_NOFEC.key, Condition(0)), find(rows, "p-hint25", Condition(0))
    if nofec0 is not None and h25 is not None and None not in (nofec0.pesq, h25.pesq):
        notes.append(
            f"FEC is not free at 32 kbit/s: with no loss at all, FEC with a 25 % hint scores "
            f"{h25.pesq:.2f} against {nofec0.pesq:.2f} without (libopus moves bits from the "
            "primary coding into the LBRR copy), which is why `fec auto` keeps it off until "
            "RTCP reports loss."
        )
    idle = [
        r.cond.label
        for r in rows
        if r.key == OPUS_FEC.key and r.lost_blocks and not r.fec_blocks and r.cond.loss_pct > 0
    ]
    if idle:
        notes.append(
            f"At {', '.join(idle)} the 'FEC, hint = loss' stream carries no LBRR at all (0 "
            "blocks rebuilt): at 32 kbit/s libopus judges a 5 % hint not worth the FEC bits "
            "and leaves it off, so those rows (and GStreamer's) show what the hint's more "
            "robust coding does alone."
        )
    for kbps, key, fec_key in ((32, "p-nofec-hint", OPUS_FEC.key), (48, "p-48-nofec-hint", "p-48")):
        h, f = find(rows, key, Condition(10)), find(rows, fec_key, Condition(10))
        if h is None or f is None or h.pesq is None or f.pesq is None:
            continue
        gain = f.pesq - h.pesq
        verdict_text = (
            "the LBRR copy adds next to nothing on top of the hint"
            if abs(gain) < MATCH_PESQ
            else f"the LBRR copy is worth {gain:+.2f} PESQ on top of the hint"
        )
        notes.append(
            f"{kbps} kbit/s at 10 % loss, loss hint on in both: FEC off {h.pesq:.2f} "
            f"(STOI {f_stoi(h.stoi)}), FEC on {f.pesq:.2f} (STOI {f_stoi(f.stoi)}): "
            f"{verdict_text}."
        )
    auto20 = find(rows, OPUS_AUTO.key, Condition(20))
    if auto20 is not None and auto20.final.get("bitrate_bps", 32000) < 32000:
        notes.append(
            f"At 20 % random loss the adaptive mode cut its bit rate to "
            f"{auto20.final['bitrate_bps'] / 1000:g} kbit/s, though the path is not "
            "congested (RTT flat): PathAdapter's 'severe loss' rule (≥ 25 %) fires on single "
            "report intervals whose loss fraction happens to exceed 25 % (about 100 packets "
            "per report: at a steady 20 %, about one report in eight reads 25 % or more)."
        )
    for cond in (Condition(10), Condition(20), Condition(10, 3)):
        a, f, n = (find(rows, k, cond) for k in (OPUS_AUTO.key, OPUS_FEC.key, OPUS_NOFEC.key))
        if None in (a, f, n) or a.pesq is None or f.pesq is None or n.pesq is None:
            continue
        notes.append(
            f"{cond.label}: no FEC {n.pesq:.2f}, FEC with hint = loss {f.pesq:.2f}, rtai "
            f"default {a.pesq:.2f} (ends at {final_text(a)}; its RTCP-driven loss estimate "
            "rises at once and falls slowly, so its hint sits above the true loss)."
        )
    spread = [r for r in rows if r.lag_spread_ms > 1.0]
    if spread:
        notes.append(
            "Delay moved during a run (lag of a 2 s window differs from the whole run's by "
            f"> 1 ms) in: {', '.join(f'{r.label} at {r.cond.label}' for r in spread)}."
        )
    else:
        notes.append(
            "The delay was constant in every run (each voiced 2 s window aligns within 1 ms "
            "of the whole run's lag), so one alignment per run is fair to PESQ."
        )
    return [n for n in notes if n]


def sweep_notes(rows: list[Row]) -> list[str]:
    def get(ms: int, kbps: int, loss: float) -> Row | None:
        return find(rows, f"s-{ms}-{kbps}", Condition(loss))

    notes = []
    cells = [(ms, kb) for ms in (10, 20) for kb in (24, 32, 48)]
    have = {(ms, kb, loss): get(ms, kb, loss) for ms, kb in cells for loss in (0, 10)}
    if any(v is None or v.pesq is None for v in have.values()):
        return notes
    best0 = max(cells, key=lambda c: have[(*c, 0)].pesq)
    best10 = max(cells, key=lambda c: have[(*c, 10)].pesq)
    d10 = [have[(20, kb, 0)].delay_ms - have[(10, kb, 0)].delay_ms for kb in (24, 32, 48)]
    gain20 = [have[(20, kb, 10)].pesq - have[(10, kb, 10)].pesq for kb in (24, 32, 48)]
    gain48 = [have[(ms, 48, 10)].pesq - have[(ms, 32, 10)].pesq for ms in (10, 20)]
    kbps = [have[(ms, kb, 10)].kbps for ms, kb in cells]
    notes.append(
        f"Best at 0 %: {best0[0]} ms, {best0[1]} kbit/s ({have[(*best0, 0)].pesq:.2f}); best "
        f"at 10 %: {best10[0]} ms, {best10[1]} kbit/s ({have[(*best10, 10)].pesq:.2f})."
    )
    notes.append(
        f"20 ms blocks instead of 10 ms: PESQ-WB at 10 % loss {min(gain20):+.2f} … "
        f"{max(gain20):+.2f}, for {np.mean(d10):.0f} ms more delay; the wire rate falls too "
        "(half the packets, half the RTP/UDP header overhead)."
    )
    notes.append(
        f"48 instead of 32 kbit/s at 10 % loss: PESQ-WB {min(gain48):+.2f} … {max(gain48):+.2f}; "
        f"sent rates in the sweep span {min(kbps):.0f}–{max(kbps):.0f} kbit/s."
    )
    return notes


# --- plot ----------------------------------------------------------------------------------------


def plot(rows: list[Row], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series = [(m.key, m.label) for m in MODES] + [(GST_FEC, GST_LABELS[GST_FEC])]
    colors = ["tab:gray", "tab:brown", "tab:blue", "tab:green", "tab:red", "tab:purple", "black"]
    random_conds = [c for c in CONDITIONS if not c.bursty]
    bursty_conds = [c for c in CONDITIONS if c.bursty]
    fig, axes = plt.subplots(1, 2, figsize=(13, 6.5), dpi=110)
    for ax, metric, name in ((axes[0], "pesq", "PESQ-WB (P.862.2)"), (axes[1], "stoi", "STOI")):
        for (key, label), color in zip(series, colors, strict=True):
            style = "--" if key == GST_FEC else "-"
            pts = [(c.loss_pct, getattr(find(rows, key, c), metric, None)) for c in random_conds]
            pts = [(x, y) for x, y in pts if y is not None]
            if pts:
                ax.plot(*zip(*pts, strict=True), style, marker="o", color=color, label=label)
            bp = [(c.loss_pct, getattr(find(rows, key, c), metric, None)) for c in bursty_conds]
            bp = [(x + 0.25, y) for x, y in bp if y is not None]
            if bp:
                ax.plot(*zip(*bp, strict=True), ":", marker="s", mfc="white", color=color)
        if metric == "pesq":
            tx = sorted(TARGETS)
            ax.plot(tx, [TARGETS[x] for x in tx], "k*", ms=12, label="issue targets (Opus 32k)")
        ax.plot([], [], "k:", marker="s", mfc="white", label="bursty loss (mean burst 3)")
        ax.set_xlabel("packet loss, %")
        ax.set_ylabel(name)
        ax.set_xticks([0, 2, 5, 10, 20])
        ax.grid(alpha=0.3)
        ax.set_title(f"{name} vs loss (filled: random, open: bursty)")
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=3, fontsize=8, frameon=False)
    fig.suptitle(
        "rtai speech quality through the real media path (simulated clock); "
        "GStreamer (dashed) lies on the Opus-FEC line"
    )
    fig.tight_layout(rect=(0, 0.12, 1, 1))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    fig.savefig(tmp, format="png")
    plt.close(fig)
    os.replace(tmp, path)


# --- the section ---------------------------------------------------------------------------------


def versions() -> str:
    parts = []
    try:
        from rtai.codecs import libopus

        parts.append(libopus.load().version())
    except Exception:  # noqa: BLE001 - only for the record
        pass
    for pkg in ("pesq", "pystoi"):
        try:
            parts.append(f"{pkg} {importlib.metadata.version(pkg)}")
        except importlib.metadata.PackageNotFoundError:
            parts.append(f"{pkg} not installed")
    v = gst.version()
    if v:
        parts.append(v)
    return ", ".join(parts)


def section(rows, args, info, signal_s, gst_note, elapsed_s) -> str:
    argv = []
    if args.quick:
        argv.append("--quick")
    elif args.seconds != 24.0:
        argv += ["--seconds", f"{args.seconds:g}"]
    if args.no_gst:
        argv.append("--no-gst")
    cmd = _common.reproduce_command("bench/quality.py", argv)
    path = args.path
    main_keys = [(m.key, m.label) for m in MODES] + [(k, v) for k, v in GST_LABELS.items()]
    pesq_note = (
        ""
        if qs.pesq_available()
        else "\n**PESQ columns are empty: the `pesq` package is not installed "
        "(`.venv/bin/pip install pesq`).**\n"
    )
    gst_cmd = " ".join(
        f'caps="{a[5:]}"' if a.startswith("caps=") else a
        for a in gst.pipeline(5004, round(args.buffer), Path("OUT.wav"))
    )
    tt, _ = targets_table(rows)
    ref = find(rows, OPUS_NOFEC.key, Condition(0))
    overhead = ""
    if ref is not None and "header_bytes" in ref.extra:
        hdr = ref.extra["header_bytes"]
        overhead = (
            f": at 10 ms an Opus packet carries {hdr:.0f} bytes of RTP header and "
            f"extensions ({hdr * 8 * 1000 / ref.block_ms / 1000:.1f} kbit/s), so the "
            f"32 kbit/s stream ({ref.extra['payload_kbps']:.1f} kbit/s of payload) sends "
            f"{ref.kbps:.1f}"
        )
    tn = "\n".join(f"- {n}" for n in target_notes(rows))
    obs = "\n".join(f"- {n}" for n in observations(rows, gst_note))
    sw = "\n".join(f"- {n}" for n in sweep_notes(rows))
    have_probes = any(r.group == "probe" for r in rows)
    have_sweep = any(r.group == "sweep" for r in rows)
    probe_keys = [(OPUS_FEC.key, OPUS_FEC.label), (OPUS_AUTO.key, OPUS_AUTO.label)]
    probe_keys += [(p.key, p.label) for p in PROBES]
    body = f"""## Speech quality under packet loss (PESQ-WB, STOI)

Measured {_common.now_stamp()} on {_common.machine_line(info)}; {versions()}.
Reproduce from the repository root with `{cmd}` (took {elapsed_s / 60:.1f} min).
{pesq_note}
{signal_s - qs.TAIL_SILENCE_S:.1f} s of espeak-ng speech (two voices alternating, 48 kHz mono) and
{qs.TAIL_SILENCE_S:g} s of silence after it go through
rtai's own `MediaSender` (encoder, RED, RTP packetizer), the netsim `Impairment` model
and `MediaReceiver` (jitter buffer, decoder, Opus FEC at playout time, concealment) on
a simulated clock: no sockets, the exact code the live session runs. The path adds
{path.delay_ms:g} ms + half-normal jitter (scale {path.jitter_ms:g} ms) one way; loss is
random or Gilbert-Elliott bursts (mean 3 packets); seed {path.seed}, the same for every
mode (packet n meets the same fate in every mode). 10 ms blocks (PCM too; the sweep
below also tries 20 ms), jitter-buffer target {args.buffer:g} ms for every mode; the
receiver's playout clock ticks every block, half a block out of phase with the
sender's. RTCP runs both ways over the same impaired path (own seeds), so the adaptive
mode's `PathAdapter.on_report` sees what it would see live.

Scores: output aligned with the input by cross-correlation (`rtai.dsp.align`), both
resampled to 16 kHz, PESQ-WB (ITU-T P.862.2, `pesq`) and STOI (`pystoi`); `pesq` wraps
the ITU reference code, licensed for evaluation only, so it is an optional import and
nothing of it is shipped. Every output is scored against the whole input (silence
where it played nothing). **delay** is
mouth-to-ear on the simulated clock, read from that alignment lag (capture block +
path + jitter buffer + playout phase + codec lookahead); **added** is delay minus the
block and the path's fixed {path.delay_ms:g} ms. **kbit/s** counts whole RTP packets
(header, extension and payload) sent{overhead}.

### rtai vs GStreamer on the same packets

The Opus-FEC stream (32 kbit/s, FEC on, loss hint = condition) as impaired by netsim
is replayed in real time over loopback UDP at its simulated arrival times, all
conditions at once, each into its own

    {gst_cmd}

`do-lost=true` is needed: without it opusdec never hears of a loss and can neither
conceal nor use FEC. The WAV is the audio; the `fakesink sync=true
processing-deadline=0` branch says when it plays (each buffer at its timestamp plus the
pipeline latency; a device sink's own margin is left out, as rtai's device latency
is). The PLC-only column is the same packets into the same pipeline with
`use-inband-fec=false`. "matches" = PESQ-WB within ±{MATCH_PESQ:g}. GStreamer's delays
are read off the wall clock and move by a millisecond or two from run to run; rtai's
come from the simulated clock and include its playout tick phase.

{comparison_table(rows)}

### All modes

PESQ-WB:

{pivot(rows, main_keys, "pesq")}

STOI:

{pivot(rows, main_keys, "stoi")}

### Targets from the issue (Opus 32 kbit/s, 10 ms)

{tt}

{tn}
"""
    if have_probes:
        body += f"""
Probes for the ceiling (PESQ-WB; * = `--max-bandwidth wb`, `OPUS_SET_MAX_BANDWIDTH`:
no audio above 8 kHz is coded and every bit goes to the band PESQ-WB listens to; the
adaptation also caps the band this way when FEC is on and loss reaches 5 %):

{probes_table(rows, probe_keys)}
"""
    if have_sweep:
        body += f"""
### Defaults for a voice intercom: block size x bit rate

rtai's default policy (FEC auto + adaptation), 0 and 10 % random loss:

{sweep_table(rows)}

{sw}
"""
    body += f"""
### What this run showed

{obs}

![PESQ-WB and STOI vs loss](quality.png)

<details><summary>Every row: bit rate, delay, lost blocks and what the encoder ended at
</summary>

{detail_table(rows, [m.key for m in MODES] + [GST_FEC, GST_PLC])}

</details>
"""
    return body


# --- main -----------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=24.0, help="speech length (24; cut in a pause)")
    p.add_argument("--quick", action="store_true", help="8 s of speech, main table only")
    p.add_argument("--no-gst", action="store_true", help="skip the GStreamer reference")
    p.add_argument("--no-write", action="store_true", help="print only; leave docs/ alone")
    p.add_argument("--keep", metavar="DIR", help="keep every output WAV in DIR")
    p.add_argument("--jobs", type=int, default=os.cpu_count() or 2, help="worker processes")
    p.add_argument("--buffer", type=float, default=40.0, help="jitter-buffer target ms (40)")
    p.add_argument("--seed", type=int, default=NetPath().seed, help="netsim seed")
    args = p.parse_args(argv)
    if args.quick:
        args.seconds = 8.0
    args.path = NetPath(seed=args.seed)

    import time

    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    console = Console(stderr=True)
    started = time.monotonic()
    info = _common.machine()
    signal = qs.two_voices(qs.RATE_HZ, args.seconds)
    settings = Settings(args.seconds, args.path, args.buffer, args.keep)
    if args.keep:
        _write_wav(Path(args.keep) / "input.wav", signal)
    if not qs.pesq_available():
        console.print("[yellow]pesq not installed: PESQ columns will be empty (pip install pesq)")
    gst_why = None if args.no_gst else gst.available()
    run_gst = not args.no_gst and gst_why is None
    gst_note = None
    if args.no_gst:
        gst_note = "GStreamer reference skipped (--no-gst)."
    elif gst_why:
        gst_note = f"GStreamer reference skipped: {gst_why}."
        console.print(f"[yellow]{gst_note}")

    first = [("main", OPUS_FEC, c, True) for c in CONDITIONS]
    rest = [("main", m, c, False) for m in MODES if m is not OPUS_FEC for c in CONDITIONS]
    if not args.quick:
        rest += [("probe", m, c, False) for m in PROBES for c in TARGET_CONDITIONS]
        rest += [("sweep", m, c, False) for m in SWEEP for c in SWEEP_CONDITIONS]
    n_gst = 2 * len(CONDITIONS) if run_gst else 0
    rows: list[Row] = []
    with (
        Progress(
            TextColumn("{task.description:<46}"),
            BarColumn(),
            TextColumn("{task.completed:>4.0f}/{task.total:<4.0f}"),
            TimeElapsedColumn(),
            console=console,
        ) as progress,
        ProcessPoolExecutor(
            max_workers=max(1, args.jobs), initializer=_init_worker, initargs=(signal, settings)
        ) as pool,
        tempfile.TemporaryDirectory(prefix="rtai-bench-quality-") as tmp,
    ):
        task = progress.add_task("simulate + score", total=len(first) + len(rest) + n_gst)
        datagrams: dict[str, list] = {}
        for fut in [pool.submit(sim_job, *job) for job in first]:
            row, dg = fut.result()
            rows.append(row)
            datagrams[row.cond.key] = dg
            progress.advance(task)
        gst_futs = []
        if run_gst:
            # Real time, all conditions at once, with the workers idle so pacing is clean.
            last = max(dg[-1][0] for dg in datagrams.values() if dg)
            gtask = progress.add_task("GStreamer receivers, real time (s)", total=last)
            streams = [gst.GstStream(f"{c.key}", datagrams[c.key]) for c in CONDITIONS]
            streams += [
                gst.GstStream(f"{c.key}-plc", datagrams[c.key], fec=False) for c in CONDITIONS
            ]
            workdir = Path(args.keep) if args.keep else Path(tmp)
            workdir.mkdir(parents=True, exist_ok=True)
            results = gst.run_streams(
                streams,
                round(args.buffer),
                workdir,
                progress=lambda t, total: progress.update(gtask, completed=t),
            )
            progress.update(gtask, completed=last)
            fec_rows = {r.cond.key: r for r in rows}
            drift = max((res.pts_drift_ms for res in results if res.output is not None), default=0)
            for res in results:
                key = GST_PLC if res.key.endswith("-plc") else GST_FEC
                cond = next(c for c in CONDITIONS if res.key.split("-")[0] == c.key)
                if res.output is None:
                    console.print(f"[red]GStreamer {res.key}: {res.error}: {res.log_tail}")
                    gst_note = f"GStreamer {res.key} failed: {res.error}."
                    progress.advance(task)
                    continue
                gst_futs.append(
                    pool.submit(
                        gst_score_job, key, cond, res.output, res.t_out0_s, fec_rows[cond.key]
                    )
                )
            if drift > 20.0:
                gst_note = (
                    f"GStreamer's buffer timestamps strayed up to {drift:.0f} ms from "
                    "back-to-back playback; its delay figures are approximate."
                )
        futs = [pool.submit(sim_job, *job) for job in rest]
        for fut in gst_futs + futs:
            res = fut.result()
            rows.append(res[0] if isinstance(res, tuple) else res)
            progress.advance(task)

    elapsed = time.monotonic() - started
    main_keys = [(m.key, m.label) for m in MODES] + list(GST_LABELS.items())
    print(comparison_table(rows))
    print()
    print(pivot(rows, main_keys, "pesq"))
    print()
    print(pivot(rows, main_keys, "stoi"))
    print()
    print(targets_table(rows)[0])
    if not args.quick:
        print()
        print(probes_table(rows, [(p.key, p.label) for p in PROBES]))
        print()
        print(sweep_table(rows))
        for n in sweep_notes(rows):
            print("-", n)
    print()
    for n in observations(rows, gst_note):
        print("-", n)
    print(f"\n({elapsed:.0f} s)")
    if not args.no_write:
        body = section(rows, args, info, signal.size / qs.RATE_HZ, gst_note, elapsed)
        _common.write_section(SECTION, body)
        plot(rows, PNG)
        print(
            f"wrote {_common.BENCHMARKS_MD.relative_to(_common.REPO)} and "
            f"{PNG.relative_to(_common.REPO)}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
