"""Codec benchmark: rtai lossless against PCM, DEFLATE and FLAC; rtai perceptual against Opus.

Material, 48 kHz 16-bit, made when the benchmark runs (nothing recorded or committed):
speech (``bench/_codec_signals.py``: two espeak-ng voices over a -66 dBFS room-noise
floor; stereo as two slightly different rooms), synthetic music (the same module: sine
partials, white-noise drums, a noise-tail reverb) and three pieces played by recorded
instruments (``bench/_sampled_music.py``: FluidSynth through the MIT-licensed Fluid R3
SoundFont), all music at -1 dBFS peak with 16-bit TPDF dither.

1. Lossless, per block of 128, 256 and 480 frames, mono and stereo: bits per sample
   and kbit/s of raw PCM, DEFLATE (zlib level 9) on each block's samples, DEFLATE on
   each block's byte planes (all high bytes, then all low bytes: the InterCom's two
   baselines, here only), FLAC and rtai lossless, plus rtai's median encode and decode
   time per block. FLAC: the ``flac`` tool (-8, i.e. LPC up to order 12 with exhaustive
   model search) codes the whole file with ``-b N``, so each FLAC frame is one block
   coded on its own, as a packet would be; its cost is the file size minus the
   metadata blocks (frame headers and CRCs count, as our header does).
2. Decorrelation: what intra-channel prediction buys, on the same blocks: polynomial
   predictors only; rtai's choice of polynomial predictor and integer lifting packet on
   its residual; and per-block LPC (order 8, coefficients quantised to the best of
   9..15 bits, residual, coefficients and warm-up counted, same Rice coder). LPC is an
   estimate from the encoder side: its exact decoder is a recursion over samples.
   Stereo: the same with and without cross-channel prediction.
3. Perceptual against Opus (libopus, application audio, VBR) at equal bit rates,
   10 ms blocks: PESQ-WB on speech (mono), and on music (stereo) the SNR and a
   noise-to-mask ratio computed here (see :func:`nmr_db`). Plot: docs/codecs.png.

Run from the repository root::

    .venv/bin/python bench/codecs.py            # 8 s of each signal, a few minutes
    .venv/bin/python bench/codecs.py --quick    # 3 s, for a look
"""

from __future__ import annotations

import argparse
import functools
import shutil
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy.linalg import solve_toeplitz

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _codec_signals as cs  # noqa: E402
import _common  # noqa: E402
import _quality_sim as qs  # noqa: E402
import _recordings as rec_  # noqa: E402
import _sampled_music as sm  # noqa: E402

from rtai.codecs import (
    CodecError,
    EncoderSettings,
    lossless,
    lossless_format,
    lossless_search,
    rice,
)  # noqa: E402
from rtai.codecs import perceptual as pc  # noqa: E402
from rtai.dsp import toh  # noqa: E402

SECTION = "codecs"
PNG = _common.REPO / "docs" / "codecs.png"
RATE = cs.RATE_HZ
BLOCKS = (128, 256, 480)
BITRATES_KBPS = (24, 32, 48, 64, 96, 128)


def signals() -> list[tuple[str, object]]:
    """(name, make(seconds, channels) -> int16 frames x channels) of every lossless signal:
    speech, the synthetic music, and the pieces played by sampled instruments (when
    FluidSynth and its SoundFont are installed; the run says so when they are not)."""
    out = [("speech", cs.speech16), ("music (synthetic)", cs.music16)]
    if sm.missing() is None:
        out += [(f"music: {p}", functools.partial(sm.music_sampled16, piece=p)) for p in sm.PIECES]
    return out


OPUS_NOTE = """

Waveform SNR favours a coder that keeps the waveform (rtai perceptual) over one that
shapes its noise by hearing and codes some bands parametrically (Opus): a higher SNR
here does not mean better sound; PESQ-WB and the NMR model hearing. rtai perceptual's
blocks stand alone with no overlap and its wavelet bands leak, which costs it most at
low rates."""


# --- lossless -----------------------------------------------------------------------------


def blocks_of(x: np.ndarray, n: int) -> list[np.ndarray]:
    return [x[i * n : (i + 1) * n] for i in range(x.shape[0] // n)]


def deflate_samples(b: np.ndarray) -> int:
    return len(zlib.compress(b.astype("<i2").tobytes(), 9))


def deflate_planes(b: np.ndarray) -> int:
    raw = b.astype("<i2").reshape(-1).view(np.uint8).reshape(-1, 2)
    return len(zlib.compress(raw[:, 1].tobytes() + raw[:, 0].tobytes(), 9))


def _coded(
    x: np.ndarray, tool: str, options: list[str], suffix: str, rate: int = RATE, depth: int = 16
) -> bytes | None:
    """The file ``tool`` makes of x (integers on the ``depth``-bit grid, written as a WAV of
    that depth) with ``options``, or None when the tool is not installed."""
    if shutil.which(tool) is None:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        wav, out = Path(tmp) / "in.wav", Path(tmp) / f"out{suffix}"
        full = np.asarray(x, dtype=np.int64) << (32 - depth)  # soundfile: int32 full scale
        sf.write(wav, full.astype(np.int32), rate, subtype=f"PCM_{depth}")
        subprocess.run([tool, *options, "-o", str(out), str(wav)], check=True, capture_output=True)
        return out.read_bytes()


def flac_bytes(x: np.ndarray, n: int | None, rate: int = RATE, depth: int = 16) -> int | None:
    """Audio bytes of ``flac -8 -b n`` on x (metadata excluded; n None: flac's own block
    size), or None without flac."""
    size = [] if n is None else ["-b", str(n)]
    options = ["-s", "-f", "-8", *size, "--no-padding", "--no-seektable"]
    data = _coded(x, "flac", options, ".flac", rate, depth)
    if data is None:
        return None
    pos = 4  # "fLaC", then metadata blocks: 1 byte flags/type, 3 bytes length
    while True:
        last, length = data[pos] & 0x80, int.from_bytes(data[pos + 1 : pos + 4], "big")
        pos += 4 + length
        if last:
            return len(data) - pos


def wavpack_bytes(x: np.ndarray) -> int | None:
    """Bytes of ``wavpack -hh -x6`` on x (its own half-second blocks, no stored RIFF
    header), or None without wavpack."""
    data = _coded(x, "wavpack", ["-q", "-y", "-r", "-hh", "-x6"], ".wv")
    return None if data is None else len(data)


def lossless_run(blocks: list[np.ndarray], depth: int = 16) -> tuple[int, float, float]:
    """(total bytes, median encode us, median decode us) of rtai lossless, checked exact."""
    total, enc_us, dec_us = 0, [], []
    frames, channels = blocks[0].shape
    for b in blocks:
        t0 = time.perf_counter()
        payload = lossless.encode_ints(b, depth)
        t1 = time.perf_counter()
        out, _ = lossless.decode_ints(payload, frames, channels)
        t2 = time.perf_counter()
        if not np.array_equal(out, b):
            raise SystemExit("rtai lossless did not round-trip exactly")
        total += len(payload)
        enc_us.append((t1 - t0) * 1e6)
        dec_us.append((t2 - t1) * 1e6)
    return total, float(np.median(enc_us)), float(np.median(dec_us))


def lossless_table(seconds: float) -> tuple[str, list[dict]]:
    rows, records = [], []
    for name, make in signals():
        for channels in (1, 2):
            x = make(seconds, channels)
            for n in BLOCKS:
                blocks = [b.astype(np.int64) for b in blocks_of(x, n)]
                samples = len(blocks) * n * channels
                used = x[: len(blocks) * n]
                sizes = {
                    "PCM": samples * 2,
                    "DEFLATE samples": sum(deflate_samples(b) for b in blocks),
                    "DEFLATE planes": sum(deflate_planes(b) for b in blocks),
                    "FLAC -8": flac_bytes(used, n),
                }
                total, enc_us, dec_us = lossless_run(blocks)
                sizes["rtai lossless"] = total
                bps = {k: (None if v is None else 8 * v / samples) for k, v in sizes.items()}
                rec = dict(signal=name, channels=channels, block=n, bps=bps, enc_us=enc_us,
                           dec_us=dec_us, block_us=n / RATE * 1e6)  # fmt: skip
                records.append(rec)
                cells = [name, "stereo" if channels == 2 else "mono", str(n)]
                for key in sizes:
                    v = bps[key]
                    kbps = None if v is None else v * RATE * channels / 1000
                    cells.append("n/a" if v is None else f"{v:.2f} / {kbps:.0f}")
                pct = 100 * bps["rtai lossless"] / 16
                flac = bps["FLAC -8"]
                vs = "n/a" if flac is None else f"{100 * (bps['rtai lossless'] / flac - 1):+.1f} %"
                cells += [f"{pct:.1f} %", vs, f"{enc_us:.0f} / {dec_us:.0f}",
                          f"{(enc_us + dec_us) / rec['block_us'] * 100:.1f} %"]  # fmt: skip
                rows.append(cells)
                print(" | ".join(cells), flush=True)
    header = ["signal", "ch", "block", "PCM", "DEFLATE samples", "DEFLATE planes", "FLAC -8",
              "rtai lossless", "rtai % of PCM", "rtai vs FLAC", "rtai enc / dec µs",
              "enc+dec % of block"]  # fmt: skip
    return _common.markdown_table(header, rows, "lllrrrrrrrrr"), records


# --- decorrelation study -----------------------------------------------------------------


def _lpc_bits(x: np.ndarray, order: int = 8) -> int:
    """Bits of a per-block LPC coding of x (estimate: Rice residual + coefficients +
    warm-up at full width), the best coefficient precision of 9..15 bits."""
    y = x.astype(np.float64) * np.hanning(x.size + 2)[1:-1]
    ac = np.array([y[: y.size - k] @ y[k:] for k in range(order + 1)])
    if ac[0] == 0:
        return rice.Plan(x, half=lossless_format.HALF_STEPS).bits
    ac[0] *= 1.0 + 1e-4
    a = solve_toeplitz(ac[:order], ac[1 : order + 1])
    window = np.lib.stride_tricks.sliding_window_view(x, order)[:-1][:, ::-1]
    best = None
    for shift in range(9, 16):
        c = np.rint(a * (1 << shift)).astype(np.int64)
        if np.abs(c).max() >= 1 << 15:
            continue
        r = x[order:] - ((window @ c + (1 << (shift - 1))) >> shift)
        bits = rice.Plan(r, half=lossless_format.HALF_STEPS).bits + order * 16 + order * 16 + 9
        best = bits if best is None else min(best, bits)  # (coefficients, warm-up)
    return best if best is not None else rice.Plan(x, half=lossless_format.HALF_STEPS).bits


def decorrelation_table(seconds: float, records: list[dict]) -> str:
    rows = []
    depths = lossless_search.LIFT_DEPTHS
    for name, make in signals():
        x = make(seconds, 1)
        for n in BLOCKS:
            blocks = [b.astype(np.int64) for b in blocks_of(x, n)]
            samples = len(blocks) * n
            try:
                lossless_search.LIFT_DEPTHS = ()
                poly = sum(len(lossless.encode_ints(b, 16)) for b in blocks) * 8 / samples
            finally:
                lossless_search.LIFT_DEPTHS = depths
            fixed = sum(len(lossless.encode_ints(b, 16)) for b in blocks) * 8 / samples
            try:  # the option: the encoder also tries fitted predict steps
                lossless_search.FITTED = True
                both = sum(len(lossless.encode_ints(b, 16)) for b in blocks) * 8 / samples
            finally:
                lossless_search.FITTED = False
            try:  # the shipped coder with whole-step Rice parameters (bitstream version 1)
                lossless_format.HALF_STEPS = False
                whole = sum(len(lossless.encode_ints(b, 16)) for b in blocks) * 8 / samples
            finally:
                lossless_format.HALF_STEPS = True
            lpc = sum(_lpc_bits(b[:, 0]) + 8 for b in blocks) / samples
            flac = next(
                r["bps"]["FLAC -8"]
                for r in records
                if r["signal"] == name and r["channels"] == 1 and r["block"] == n
            )
            cells = [name, str(n), f"{poly:.3f}", f"{fixed:.3f}", f"{both:.3f}", f"{whole:.3f}",
                     f"{lpc:.3f}", "n/a" if flac is None else f"{flac:.3f}"]  # fmt: skip
            rows.append(cells)
            print(" | ".join(cells), flush=True)
    header = ["signal (mono)", "block", "polynomial only", "+ lifting, long steps (rtai)",
              "+ fitted predict steps (option)", "rtai, whole-step Rice", "LPC-8 estimate",
              "FLAC -8"]  # fmt: skip
    return _common.markdown_table(header, rows, "llrrrrrr")


def reference_table(seconds: float, records: list[dict]) -> str:
    """Share of PCM of coders that need no packet to stand alone in 10 ms (long blocks that
    adapt over thousands of samples) beside rtai's packets: how far the 60 % goal is from
    what the material allows at all."""
    rows, misses = [], []
    for name, make in signals():
        for channels in (1, 2):
            x = make(seconds, channels)
            pcm = x.size * 2
            kind = "stereo" if channels == 2 else "mono"
            cells = [name, kind]
            for v in (flac_bytes(x, None), wavpack_bytes(x)):
                cells.append("n/a" if v is None else f"{100 * v / pcm:.1f} %")
            worst = max(
                100 * r["bps"]["rtai lossless"] / 16
                for r in records
                if r["signal"] == name and r["channels"] == channels
            )
            if worst >= 60.0:
                misses.append(f"{name} {kind} (rtai up to {worst:.1f} %; FLAC {cells[2]},"
                              f" WavPack {cells[3]})")  # fmt: skip
            for n in (480, 128):
                rec = next(
                    r for r in records
                    if r["signal"] == name and r["channels"] == channels and r["block"] == n
                )  # fmt: skip
                cells.append(f"{100 * rec['bps']['rtai lossless'] / 16:.1f} %")
            rows.append(cells)
            print(" | ".join(cells), flush=True)
    header = ["signal", "ch", "FLAC -8, 4096-frame blocks", "WavPack -hh -x6, 0.5 s blocks",
              "rtai lossless, 480-frame packets", "rtai lossless, 128-frame packets"]  # fmt: skip
    table = _common.markdown_table(header, rows, "llrrrr")
    if not misses:
        return table
    return f"{table}\n\nWhere some rtai packet size misses 60 %: " + "; ".join(misses) + "."


def recordings_table() -> tuple[str, str]:
    """rtai lossless and FLAC -8 at the same block sizes on the licence-clean recordings
    (``bench/_recordings.py``), whole, at their own rate and depth: (table, goal lines)."""
    rows, records = [], []
    for rec in rec_.RECORDINGS:
        for channels in (1, 2):
            x, rate = rec_.load(rec, channels)
            for n in BLOCKS:
                blocks = blocks_of(x, n)
                used = np.concatenate(blocks)
                pcm = used.size * rec.depth / 8
                total, enc_us, dec_us = lossless_run(blocks, rec.depth)
                flac = flac_bytes(used, n, rate, rec.depth)
                pct = 100 * total / pcm
                block_us = n / rate * 1e6
                records.append(dict(name=rec.name, channels=channels, block=n, pct=pct,
                                    vs=None if flac is None else total / flac - 1))  # fmt: skip
                cells = [rec.name, "stereo" if channels == 2 else "mono", str(n),
                         f"{rate / 1000:g} kHz, {rec.depth}-bit",
                         "n/a" if flac is None else f"{100 * flac / pcm:.1f} %", f"{pct:.1f} %",
                         "n/a" if flac is None else f"{100 * (total / flac - 1):+.1f} %",
                         f"{(enc_us + dec_us) / block_us * 100:.1f} %"]  # fmt: skip
                rows.append(cells)
                print(" | ".join(cells), flush=True)
    header = ["recording", "ch", "block", "as published", "FLAC -8, % of PCM",
              "rtai lossless, % of PCM", "rtai vs FLAC", "enc+dec % of block"]  # fmt: skip
    table = _common.markdown_table(header, rows, "lllrrrrr")
    compared = [r for r in records if r["vs"] is not None]
    wins = [r for r in compared if r["vs"] < 0]
    under = [r for r in records if r["pct"] < 60.0]
    over = ", ".join(
        f"{r['name']} {'stereo' if r['channels'] == 2 else 'mono'} {r['block']} ({r['pct']:.1f} %)"
        for r in records
        if r not in under
    )
    lines = (
        f"Goal check on the recordings: rtai lossless is below FLAC in {len(wins)} of"
        f" {len(compared)} cases"
        + (
            f" (by {-100 * max(r['vs'] for r in wins):.1f} to"
            f" {-100 * min(r['vs'] for r in wins):.1f} %)"
            if wins
            else ""
        )
        + f"; under 60 % of PCM in {len(under)} of {len(records)}"
        + (f"; not in: {over}." if over else ".")
    )
    return table, lines


def stereo_table(seconds: float, records: list[dict]) -> str:
    """Stereo bits per sample with and without cross-channel prediction (same blocks)."""
    rows = []
    for name, make in signals():
        x = make(seconds, 2)
        for n in BLOCKS:
            blocks = [b.astype(np.int64) for b in blocks_of(x, n)]
            samples = len(blocks) * n * 2
            used = 0
            try:
                lossless_search.CROSS_PREDICTION = False
                plain = sum(len(lossless.encode_ints(b, 16)) for b in blocks) * 8 / samples
            finally:
                lossless_search.CROSS_PREDICTION = True
            for b in blocks:
                used += lossless.encode_ints(b, 16)[0] & 1
            rec = next(
                r for r in records if r["signal"] == name and r["channels"] == 2 and r["block"] == n
            )
            flac = rec["bps"]["FLAC -8"]
            cells = [name, str(n), f"{plain:.3f}", f"{rec['bps']['rtai lossless']:.3f}",
                     f"{100 * used / len(blocks):.0f} %",
                     "n/a" if flac is None else f"{flac:.3f}"]  # fmt: skip
            rows.append(cells)
            print(" | ".join(cells), flush=True)
    header = ["signal (stereo)", "block", "pair choice only", "+ cross-channel prediction (rtai)",
              "blocks using it", "FLAC -8"]  # fmt: skip
    return _common.markdown_table(header, rows, "llrrrr")


# --- perceptual vs Opus ------------------------------------------------------------------


def run_codec(kind: str, x: np.ndarray, kbps: int, n: int = 480) -> tuple[np.ndarray, float]:
    """(decoded signal aligned to x, measured kbit/s) through perceptual or Opus."""
    channels = x.shape[1]
    settings = EncoderSettings(bitrate_bps=kbps * 1000, application="audio")
    if kind == "opus":
        from rtai.codecs.opus import OpusDecoder, OpusEncoder

        enc, dec = OpusEncoder(RATE, channels, n, settings), OpusDecoder(RATE, channels, n)
    else:
        enc, dec = pc.PerceptualEncoder(RATE, channels, n, settings), None
    delay = enc.lookahead_frames
    padded = np.concatenate([x, np.zeros((delay + n, channels), np.float32)])
    out, total = [], 0
    for b in blocks_of(padded, n):
        payload = enc.encode(np.ascontiguousarray(b))
        total += len(payload)
        if dec is None:
            out.append(pc.decode_block(payload, n, channels, RATE))
        else:
            out.append(dec.decode(payload).copy())
    y = np.concatenate(out)[delay : delay + x.shape[0]]
    return y, total * 8 / (len(out) * n / RATE) / 1000


def _bark(f_hz: np.ndarray) -> np.ndarray:
    return 13.0 * np.arctan(0.00076 * f_hz) + 3.5 * np.arctan((f_hz / 7500.0) ** 2)


def nmr_db(ref: np.ndarray, out: np.ndarray, full_scale_db_spl: float = 96.0) -> float:
    """A simplified noise-to-mask ratio, dB (mean over frames of the band-averaged ratio).

    2048-point Hann frames, hop 1024. Per frame, signal and error (out - ref) power are
    summed in 1-Bark bands; the mask of each band is the signal's band powers spread
    over the Bark scale (Schroeder's spreading function) lowered by 10 dB, and at least
    Terhardt's threshold in quiet with a full-scale sine at 96 dB SPL. Not PEAQ's NMR:
    only for comparing codecs on the same material. Below 0 dB the error is, by this
    model, masked.
    """
    n, hop = 2048, 1024
    win = np.hanning(n)
    f = np.fft.rfftfreq(n, 1.0 / RATE)
    z = _bark(f)
    band = np.minimum(z.astype(int), int(z.max()))
    nb = band.max() + 1
    centres = np.array([z[band == b].mean() if np.any(band == b) else b + 0.5 for b in range(nb)])
    dz = centres[None, :] - centres[:, None]  # masker j (rows) -> band i (cols)
    spread_db = 15.81 + 7.5 * (dz + 0.474) - 17.5 * np.sqrt(1.0 + (dz + 0.474) ** 2)
    spread = 10.0 ** (spread_db / 10.0)
    scale = (2.0 / win.sum()) ** 2 / 2.0  # bin power -> sine power (full-scale sine = 0.5)
    quiet = 10.0 ** ((toh.threshold_db_spl(f) - full_scale_db_spl) / 10.0) * 0.5
    quiet_band = np.array([quiet[band == b].min() if np.any(band == b) else 1.0 for b in range(nb)])
    ratios = []
    for ch in range(ref.shape[1]):
        r, e = ref[:, ch].astype(np.float64), out[:, ch].astype(np.float64) - ref[:, ch]
        for start in range(0, r.size - n, hop):
            ps = np.abs(np.fft.rfft(r[start : start + n] * win)) ** 2 * scale
            pe = np.abs(np.fft.rfft(e[start : start + n] * win)) ** 2 * scale
            s_band = np.bincount(band, ps, nb)
            if s_band.sum() < 1e-9:
                continue  # silence: nothing to mask
            e_band = np.bincount(band, pe, nb)
            mask = np.maximum((s_band @ spread) * 10.0 ** (-10.0 / 10.0), quiet_band)
            ratios.append(10.0 * np.log10(np.mean(e_band / mask) + 1e-12))
    return float(np.mean(ratios))


def rate_quality(seconds: float) -> tuple[str, list[dict]]:
    speech = (cs.speech16(seconds, 1) / 32768.0).astype(np.float32)
    music = (cs.music16(seconds, 2) / 32768.0).astype(np.float32)
    have_pesq = qs.pesq_available()
    rows, recs = [], []
    for kbps in BITRATES_KBPS:
        for kind in ("perceptual", "opus"):
            rec = {"codec": kind, "target": kbps}
            y, rate_s = run_codec(kind, speech, kbps)
            rec["speech_kbps"] = rate_s
            rec["pesq"] = None
            if have_pesq:
                from pesq import pesq

                rec["pesq"] = float(
                    pesq(16000, qs.to_score_rate(speech[:, 0], RATE),
                         qs.to_score_rate(y[:, 0], RATE), "wb")
                )  # fmt: skip
            rec["speech_snr"] = qs.snr_db(speech[:, 0], y[:, 0])
            y, rate_m = run_codec(kind, music, kbps)
            rec["music_kbps"] = rate_m
            rec["music_snr"] = qs.snr_db(music.ravel(), y.ravel())
            rec["music_nmr"] = nmr_db(music, y)
            recs.append(rec)
            pesq_cell = "n/a" if rec["pesq"] is None else f"{rec['pesq']:.2f}"
            cells = [str(kbps), kind, f"{rate_s:.1f}", pesq_cell, f"{rec['speech_snr']:.1f}",
                     f"{rate_m:.1f}", f"{rec['music_snr']:.1f}",
                     f"{rec['music_nmr']:.1f}"]  # fmt: skip
            rows.append(cells)
            print(" | ".join(cells), flush=True)
    header = ["target kbit/s", "codec", "speech kbit/s", "speech PESQ-WB", "speech SNR dB",
              "music kbit/s", "music SNR dB", "music NMR dB"]  # fmt: skip
    return _common.markdown_table(header, rows, "rlrrrrrr"), recs


def plot(recs: list[dict]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(14, 4.2))
    for kind, style in (("perceptual", "o-"), ("opus", "s--")):
        rs = [r for r in recs if r["codec"] == kind]
        if rs[0]["pesq"] is not None:
            axes[0].plot([r["speech_kbps"] for r in rs], [r["pesq"] for r in rs], style, label=kind)
        axes[1].plot([r["music_kbps"] for r in rs], [r["music_snr"] for r in rs], style, label=kind)
        axes[2].plot([r["music_kbps"] for r in rs], [r["music_nmr"] for r in rs], style, label=kind)
    axes[0].set(title="speech, mono: PESQ-WB (higher is better)", xlabel="kbit/s", ylabel="MOS-LQO")
    axes[1].set(title="music, stereo: SNR (higher is better)", xlabel="kbit/s", ylabel="dB")
    axes[2].set(title="music, stereo: NMR (lower is better)", xlabel="kbit/s", ylabel="dB")
    for ax in axes:
        ax.grid(True, alpha=0.3)
        ax.legend()
    fig.suptitle("rtai perceptual vs Opus (audio, VBR), 10 ms blocks, 48 kHz")
    fig.tight_layout()
    fig.savefig(PNG, dpi=110)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="3 s of each signal")
    ap.add_argument("--seconds", type=float, default=8.0, help="seconds of each signal (8)")
    args = ap.parse_args(argv)
    seconds = 3.0 if args.quick else args.seconds
    info = _common.machine()
    stamp = _common.now_stamp()
    print("lossless:")
    lossless_md, records = lossless_table(seconds)
    print("decorrelation:")
    decor_md = decorrelation_table(seconds, records)
    print("stereo:")
    stereo_md = stereo_table(seconds, records)
    print("long-block references:")
    reference_md = reference_table(seconds, records)
    print("recordings:")
    recordings_md, recordings_goal = recordings_table()
    print("perceptual vs opus:")
    try:
        rq_md, recs = rate_quality(seconds)
    except CodecError as e:
        rq_md, recs = f"(not run: {e})", []
    if recs:
        plot(recs)
    summary = _goal_lines(records)
    flac_version = _common.tool_version(["flac", "--version"]) or "flac not installed"
    wavpack_version = _common.tool_version(["wavpack", "--version"]) or "wavpack not installed"
    why = sm.missing()
    sampled_note = f" (Not run here: {why}.)" if why else ""
    body = f"""## Codecs: rtai lossless and perceptual

Measured {stamp} on {_common.machine_line(info)}; {flac_version}; {wavpack_version}.
Reproduce from the repository root with `{_common.reproduce_command("bench/codecs.py", argv)}`.

Material, {seconds:g} s of each, 48 kHz 16-bit, every block coded on its own, as one packet:

* speech: two espeak-ng voices over a -66 dBFS room-noise floor; stereo: the voice
  through two slightly different rooms (`bench/_codec_signals.py`).
* music (synthetic): bass, chords and lead from sine partials, drums and hi-hat from
  white noise, a noise-tail stereo reverb (`bench/_codec_signals.py`).
* music: band / piano / strings: three pieces of our own score played by recorded
  instruments: rendered by FluidSynth through the Fluid (R3) General MIDI SoundFont
  (MIT licence; Debian's `fluid-soundfont-gm`) with its reverb and chorus
  (`bench/_sampled_music.py`). band: piano, strings, bass, guitar, flute and a drum kit
  with cymbals; piano: solo piano under the sustain pedal; strings: ensemble, cello,
  violin and harp.{sampled_note}

All this music is mastered alike: -1 dBFS peak, TPDF dither to 16 bits, and made when
the benchmark runs. Real recordings (committed with their licences) have their own
table below ("Recordings").

### Lossless: bits per sample / kbit/s, per block

DEFLATE rows are the InterCom baselines (zlib level 9 per block, on the samples and on
the byte planes); they exist only here. FLAC: `flac -8 -b BLOCK` on the whole file, so
every FLAC frame is one independently decodable block; its cost is the file minus its
metadata (frame headers and CRCs included, as rtai's one-byte header is). Times are
medians per block of the pure-Python rtai coder (NumPy), encode / decode, on this
machine while other work shared it; "% of block" is encode + decode time over the
block's duration.

{lossless_md}

{summary}

### Without the 10 ms packet: long-block coders on the same material (% of PCM)

How small the material gets when no packet has to stand alone: FLAC -8 with its own
4096-frame blocks (85 ms), and WavPack in its strongest mode (`-hh -x6`: its
decorrelation filters adapt sample by sample through half-second blocks), on the whole
file; beside them rtai lossless at its largest and smallest packets from the table above.

{reference_md}

### Recordings: licence-clean music as published

The material above is made here (the instruments of the sampled pieces are recordings,
the mixes are not). These are real recordings, whole, at the rate and depth their
publishers distribute (44.1 kHz; one is 24-bit, coded as 24-bit; % of PCM at that depth):
an electronic beat by Arovane and three Sonic Pi samples from freesound.org (CC0), and a
16-second excerpt of Kevin MacLeod's music (CC BY 3.0, incompetech.com); sources,
licences and checksums in `data/recordings/LICENCE.md`. Mono is the mid channel. FLAC:
`flac -8 -b BLOCK`, as above.

{recordings_md}

{recordings_goal}

### Decorrelation: what prediction buys (mono, bits per sample)

"polynomial only" is rtai lossless with the lifting stage off; "+ lifting, long
steps" (the shipped coder) adds, when it pays, an integer lifting packet of depth 1..2
(1..3 from 256 frames, 1..4 from 480) over the polynomial residual, each band with its
own Rice parameters; its steps are long interpolators (20 taps, Lagrange midpoint
weights, for both predict and update: bitstream version 4; with the (9,7)-M steps of
version 3 packets were 0.2-6 % bigger). "+ fitted predict steps" is the encoder option
(`FITTED`, off) that may also replace the packet's first predict step by the block's
own least-squares interpolator (8 or 12 even neighbours of each odd sample, symmetric,
so 4 or 6 coefficients over 2^7 sent) and the second split of the low band by a second
fitted one, in mono blocks from 480 frames (below that the column equals the one
before): over the long steps it buys too little for its time. All of these code
residuals with half-step Rice parameters (a parameter may double the first bucket of
the one below: closer to the near-Gaussian residuals of noisy material); "whole-step
Rice" is the shipped coder with plain Rice parameters instead (bitstream version 1), to
show what the half steps buy. "LPC-8" estimates per-block
linear prediction of order 8 with quantised coefficients (best precision of 9..15
bits), sent coefficients and warm-up samples, and the same Rice coder. An exact LPC
decoder is a recursion over samples (each sample needs the one before, through a
rounding), which NumPy cannot vectorise; the polynomial predictor inverts with
cumulative sums and the lifting packet (fitted step included: it predicts odd samples
from even ones only) with whole-array steps, so rtai uses those.

{decor_md}

### Stereo: what cross-channel prediction buys (bits per sample)

"pair choice only" is rtai lossless choosing, per block, which two of left, right,
mid and side to code (by estimated cost), as before this stage existed. The shipped
coder then may code the pair's second channel as its difference from a prediction
from the first, which the decoder has whole before it needs it: a 3-tap filter at
lags -1, 0, +1, least-squares on the block's first differences, coefficients over 2^8
sent (from 256 frames it also tries left/right with right predicted from left, for a
channel that is a filtered copy of the other). It is kept only when the exact cost
says it saves bits. No recursion: the decoder adds the prediction to the decoded
difference in one array step. Material where the channels share little beyond their
sum and difference (here the speech: one voice through two rooms with independent
noise floors) gains nothing from it.

{stereo_md}

### Perceptual vs Opus at equal bit rates (10 ms blocks)

Both codecs code the same 48 kHz material in 480-frame blocks; Opus with application
audio, VBR, complexity 9, its lookahead removed before scoring. PESQ-WB (ITU-T P.862.2,
`pesq` package) on speech resampled to 16 kHz; on music the waveform SNR and the
noise-to-mask ratio of `nmr_db` in this script (Bark bands, Schroeder spreading,
10 dB masking offset, Terhardt threshold in quiet at 96 dB SPL full scale; a simple
model, not PEAQ). Plot: `docs/codecs.png`.

{rq_md}

{_rq_lines(recs)}

![perceptual vs opus](codecs.png)
"""
    _common.write_section(SECTION, body)
    print(f"wrote the {SECTION} section of {_common.BENCHMARKS_MD} and {PNG}")
    return 0


def _goal_lines(records: list[dict]) -> str:
    below = [r for r in records if r["bps"]["FLAC -8"] is not None]
    wins = [r for r in below if r["bps"]["rtai lossless"] < r["bps"]["FLAC -8"]]
    under60 = [r for r in records if r["bps"]["rtai lossless"] < 0.6 * 16]
    worst = max(records, key=lambda r: r["enc_us"] + r["dec_us"] - r["block_us"])
    lose = ", ".join(
        f"{r['signal']} {'stereo' if r['channels'] == 2 else 'mono'} {r['block']}"
        f" ({100 * (r['bps']['rtai lossless'] / r['bps']['FLAC -8'] - 1):+.1f} %)"
        for r in below
        if r not in wins
    )
    over = ", ".join(
        f"{r['signal']} {'stereo' if r['channels'] == 2 else 'mono'} {r['block']}"
        f" ({100 * r['bps']['rtai lossless'] / 16:.1f} %)"
        for r in records
        if r not in under60
    )
    return (
        f"Goal check: rtai lossless is below FLAC in {len(wins)} of {len(below)} cases"
        + (f"; FLAC is smaller in: {lose}." if lose else ".")
        + f" Under 60 % of PCM in {len(under60)} of {len(records)} cases"
        + (f"; not in: {over}." if over else ".")
        + f" Slowest case: {worst['signal']} {worst['block']} frames x {worst['channels']} ch,"
        f" encode + decode {worst['enc_us'] + worst['dec_us']:.0f} µs for a"
        f" {worst['block_us']:.0f} µs block."
    )


def _rq_lines(recs: list[dict]) -> str:
    if not recs:
        return ""
    lines = []
    for metric, better, label in (
        ("pesq", max, "speech PESQ-WB"),
        ("music_snr", max, "music SNR"),
        ("music_nmr", min, "music NMR"),
    ):
        if recs[0].get(metric) is None:
            continue
        opus_wins = []
        for kbps in BITRATES_KBPS:
            pair = {r["codec"]: r[metric] for r in recs if r["target"] == kbps}
            if better(pair["opus"], pair["perceptual"]) == pair["opus"]:
                opus_wins.append(str(kbps))
        lines.append(
            f"- {label}: Opus is better at {', '.join(opus_wins) or 'no'} kbit/s"
            f" of {', '.join(map(str, BITRATES_KBPS))}."
        )
    return "Where Opus wins (measured above):\n\n" + "\n".join(lines) + OPUS_NOTE


if __name__ == "__main__":
    raise SystemExit(main())
