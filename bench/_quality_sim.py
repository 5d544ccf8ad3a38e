"""Offline speech-quality simulation: the real media path on a simulated clock.

One direction of a call, built from the very objects the live session runs:

    speech ─► MediaSender.packetize ─► bytes ─► netsim Impairment ─► MediaReceiver.receive
                 ▲ PathAdapter                                            │
                 └── RtcpSession A ◄── impaired RTCP ◄── RtcpSession B ◄──┘ (stats)
                                                     MediaReceiver.playout(t) once per tick

Nothing here has a socket, thread or wall clock. Times are seconds on one simulated
clock (starting at ``T0_S`` so the NTP fields of the RTCP reports are never zero):

* The sender captures block ``k`` (input samples ``[k*N, (k+1)*N)``) from
  ``k*T`` and packetizes it the moment it is complete, at ``(k+1)*T``.
* Each datagram is pushed into the impairment model at its send time and handed to
  ``MediaReceiver.receive`` at its release time (events are processed in time order,
  so a packet that arrives just before a tick is there for it).
* The receiver's playout clock ticks every ``T`` at a phase of ``tick_phase`` blocks
  against the sender's (a device clock is not in step with the network: half a block is
  the expected phase of an unrelated one). Each tick takes one block into the output.
* RTCP runs both ways as in :mod:`rtai.session`: each side builds a compound report at
  ``now + 0.2 s`` and then every ``RTCP_INTERVAL_S * uniform(0.5, 1.5)`` (seeded), the
  report crosses its own impaired path (same loss, delay and jitter as the media, own
  seed), and when the sender's side learns something new it calls
  ``PathAdapter.on_report`` exactly like ``Peer._receive_rtcp``.

The output is a timeline: sample ``m`` played at ``t_out0_s + m / rate`` (relative to
the first input sample's capture). Scoring aligns it with the input by
cross-correlation (:mod:`rtai.dsp.align`), so the lag *is* the mouth-to-ear delay on
the simulated clock, measured from the audio.
"""

from __future__ import annotations

import math
import random
from dataclasses import asdict, dataclass, field

import numpy as np
from scipy import signal as sp_signal
from scipy.signal import resample_poly

from rtai import codecs
from rtai.adapt import Limits, PathAdapter
from rtai.audio.signals import speech_clip
from rtai.codecs import EncoderSettings
from rtai.dsp.align import correlation, find_lag
from rtai.jitter import Playout
from rtai.media import MediaReceiver, MediaSender
from rtai.netsim.model import Impairment, ImpairmentConfig
from rtai.rtp import rtcp
from rtai.rtp.reporting import RtcpSession

try:  # the live session's report interval, so the simulation follows it
    from rtai.session import RTCP_INTERVAL_S
except Exception:  # pragma: no cover - sound-device libraries missing
    RTCP_INTERVAL_S = 1.0

RATE_HZ = 48000
SCORE_RATE_HZ = 16000  # PESQ wide-band (P.862.2) and STOI run at 16 kHz
T0_S = 1000.0  # simulated clock at the first input sample
FIRST_RTCP_S = 0.2  # as rtai.session: the first report 0.2 s into the call
TAIL_S = 0.4  # playout keeps ticking this long after the last block was sent
TAIL_SILENCE_S = 0.5  # silence sent after the speech (see two_voices)
SSRC_A = 0x5EED_0A0A  # the talking side (sender)
SSRC_B = 0x5EED_0B0B  # the listening side (receiver)
FIRST_SEQ = 65000  # the sequence number wraps early in every run, as it may live
OPUS_SET_MAX_BANDWIDTH = 4004  # opus_defines.h
_BANDWIDTHS = {"nb": 1101, "mb": 1102, "wb": 1103, "swb": 1104, "fb": 1105}
TICK_IDLE, TICK_NORMAL, TICK_CONCEAL, TICK_FEC = 0, 1, 2, 3
_TICK_KIND = {Playout.IDLE: TICK_IDLE, Playout.NORMAL: TICK_NORMAL, Playout.CONCEAL: TICK_CONCEAL}


# --- what to run -------------------------------------------------------------------------


@dataclass(frozen=True)
class Mode:
    """One way of sending: codec, encoder settings and protection policy.

    ``loss_hint``: the Opus packet-loss hint given to the encoder at start, in %, or
    ``"loss"`` for the condition's own loss rate (rounded up). ``fec``, ``redundancy``
    and ``adaptive`` are the :class:`rtai.adapt.Limits` of the live session.
    """

    key: str
    label: str
    codec: str = "opus"
    bitrate_kbps: float = 32.0
    block_ms: float = 10.0
    fec: str = "off"  # on | off | auto
    adaptive: bool = False
    redundancy: int | None = 0  # None: adapt (RED for codecs without FEC)
    loss_hint: int | str = 0
    complexity: int = 9
    application: str = "voip"
    # A probe beyond rtai's settings: cap the Opus audio bandwidth ("wb" = 8 kHz audio,
    # "swb" = 12 kHz) with OPUS_SET_MAX_BANDWIDTH on the sender's libopus state.
    max_bandwidth: str | None = None

    def block_frames(self, rate_hz: int = RATE_HZ) -> int:
        return round(rate_hz * self.block_ms / 1000.0)

    def hint_pct(self, cond: Condition) -> int:
        if self.loss_hint == "loss":
            return min(100, math.ceil(cond.loss_pct))
        return int(self.loss_hint)


@dataclass(frozen=True)
class Condition:
    """The network: loss (random or Gilbert-Elliott bursts) on a fixed delay + jitter."""

    loss_pct: float
    burst_packets: float = 0.0  # > 1: Gilbert-Elliott with this mean burst length

    @property
    def bursty(self) -> bool:
        return self.burst_packets > 1.0

    @property
    def label(self) -> str:
        kind = f"bursty (mean {self.burst_packets:g})" if self.bursty else "random"
        return f"{self.loss_pct:g} % {kind}"

    @property
    def key(self) -> str:
        return f"{'b' if self.bursty else 'r'}{self.loss_pct:g}"


@dataclass(frozen=True)
class Path:
    delay_ms: float = 20.0
    jitter_ms: float = 3.0  # half-normal scale: mean 2.4 ms, p99 7.7 ms
    seed: int = 20240611

    def config(self, cond: Condition, stream: int = 0) -> ImpairmentConfig:
        """The impairment of one stream (0 media, 1 RTCP A->B, 2 RTCP B->A)."""
        return ImpairmentConfig(
            delay_ms=self.delay_ms,
            jitter_ms=self.jitter_ms,
            loss_pct=cond.loss_pct,
            burst_packets=cond.burst_packets,
            seed=self.seed + stream,
        )


@dataclass
class SimRun:
    """What one simulated call did, and the audio that came out."""

    mode: Mode
    cond: Condition
    output: np.ndarray  # float32 mono timeline played by the receiver
    t_out0_s: float  # time of output[0], relative to the capture of input[0]
    block_frames: int
    rate_hz: int
    duration_s: float  # of the input
    sent_packets: int
    sent_bytes: int  # whole RTP datagrams (header + payload)
    payload_bytes: int  # codec payload alone (RED blocks and headers not counted)
    lookahead_frames: int
    receive: dict
    jitter: dict
    network: dict
    reports_to_sender: int
    decisions: list[tuple[float, bool, int, int, int]]  # (t, fec, hint %, bitrate, red)
    final: dict  # the encoder's settings at the end, read back from the codec
    kinds: np.ndarray  # per playout tick: TICK_IDLE, TICK_NORMAL, TICK_CONCEAL or TICK_FEC
    datagrams: list[tuple[float, bytes]] = field(default_factory=list)  # (release_s, data)

    @property
    def bitrate_kbps(self) -> float:
        return self.sent_bytes * 8.0 / self.duration_s / 1000.0

    @property
    def loss_seen_pct(self) -> float:
        n = self.network
        return 100.0 * n["dropped_loss"] / max(1, n["offered"])


# --- speech --------------------------------------------------------------------------------


def two_voices(rate_hz: int, seconds: float, tail_s: float = TAIL_SILENCE_S) -> np.ndarray:
    """``seconds`` of espeak-ng speech, voice 0 then voice 1 then again, cut in a pause,
    then ``tail_s`` of silence; float32 mono.

    The cut lands on the quietest 20 ms within 1.5 s before the requested length, so no
    word is chopped. The silence keeps the stream going after the last word, as a call
    does: a loss burst at the very end is then followed by a packet, so every receiver
    sees it as a gap (without one, GStreamer plays nothing there and rtai conceals, and
    PESQ would score the end of the file, not the receivers).
    """
    clips = [speech_clip(rate_hz, 0), speech_clip(rate_hz, 1)]
    want = round(seconds * rate_hz)
    parts, total, i = [], 0, 0
    while total < want:
        parts.append(clips[i % 2])
        total += clips[i % 2].size
        i += 1
    x = np.concatenate(parts)
    hop = round(0.02 * rate_hz)
    lo = max(hop, want - round(1.5 * rate_hz))
    starts = np.arange(lo, want - hop + 1, hop)
    energy = np.array([float(np.dot(x[s : s + hop], x[s : s + hop])) for s in starts])
    cut = int(starts[int(np.argmin(energy))]) + hop // 2 if starts.size else want
    tail = np.zeros(round(tail_s * rate_hz), dtype=np.float32)
    return np.concatenate([x[:cut].astype(np.float32), tail])


# --- the simulation --------------------------------------------------------------------------


def _make_pair(mode: Mode, cond: Condition, rate_hz: int, buffer_ms: float):
    info = codecs.get_codec(mode.codec)
    n = mode.block_frames(rate_hz)
    reason = info.check(rate_hz, 1, n)
    if reason:
        raise ValueError(reason)
    bitrate = round(mode.bitrate_kbps * 1000)
    base = EncoderSettings(
        bitrate_bps=bitrate,
        loss_pct=mode.hint_pct(cond),
        complexity=mode.complexity,
        application=mode.application,
    )
    # As rtai.session.Peer._new_call builds them.
    limits = Limits(
        max_bitrate_bps=bitrate,
        min_bitrate_bps=min(bitrate, 12000),
        fec=mode.fec,
        fec_available=info.has_fec and n * 100 >= rate_hz,
        redundancy=mode.redundancy,
        adaptive=mode.adaptive,
    )
    adapter = PathAdapter(base, limits)
    clock = info.clock_rate(rate_hz)
    rtcp_a = RtcpSession(SSRC_A, SSRC_B, clock, "talker")
    rtcp_b = RtcpSession(SSRC_B, SSRC_A, clock, "listener")
    pt = info.payload_type
    sender = MediaSender(info, rate_hz, 1, n, pt, SSRC_A, adapter, rtcp_a.sender)
    sender.seq = FIRST_SEQ
    sender.timestamp = 0xFFFF_0000  # wraps too
    receiver = MediaReceiver(info, rate_hz, 1, n, pt, SSRC_A, buffer_ms, rtcp_b.receiver)
    if mode.max_bandwidth:
        # Not an rtai setting (EncoderSettings has no bandwidth): set on libopus directly.
        # configure() only recreates the state when the application changes, so it stays.
        sender.encoder._set(OPUS_SET_MAX_BANDWIDTH, _BANDWIDTHS[mode.max_bandwidth])
    return sender, receiver, adapter, rtcp_a, rtcp_b


def simulate(
    signal: np.ndarray,
    mode: Mode,
    cond: Condition,
    path: Path = Path(),
    *,
    rate_hz: int = RATE_HZ,
    buffer_ms: float = 40.0,
    tick_phase: float = 0.5,
    keep_datagrams: bool = False,
) -> SimRun:
    """Send ``signal`` (float mono at ``rate_hz``) one way through the real media path."""
    sender, receiver, adapter, rtcp_a, rtcp_b = _make_pair(mode, cond, rate_hz, buffer_ms)
    n = mode.block_frames(rate_hz)
    block_s = n / rate_hz
    k_blocks = signal.size // n
    x = np.asarray(signal[: k_blocks * n], dtype=np.float32).reshape(k_blocks, n, 1)

    media = Impairment(path.config(cond, 0))
    to_b = Impairment(path.config(cond, 1))  # RTCP talker -> listener
    to_a = Impairment(path.config(cond, 2))  # RTCP listener -> talker
    rng = random.Random(f"quality-sim:{path.seed}:rtcp")

    n_ticks = math.ceil((k_blocks * block_s + TAIL_S) / block_s)
    out = np.zeros(n_ticks * n, dtype=np.float32)
    kinds = np.zeros(n_ticks, dtype=np.int8)
    datagrams: list[tuple[float, bytes]] = []
    decisions = [_decision_row(0.0, adapter)]
    seen_version = adapter.version
    reports_seen = 0

    def deliver(until_s: float) -> None:
        nonlocal reports_seen, seen_version
        due = [(r.release_s, 0, r.item) for r in media.pop_due(until_s)]
        due += [(r.release_s, 1, r.item) for r in to_b.pop_due(until_s)]
        due += [(r.release_s, 2, r.item) for r in to_a.pop_due(until_s)]
        due.sort(key=lambda d: (d[0], d[1]))
        for t, stream, data in due:
            if stream == 0:
                receiver.receive(data, t)
                if keep_datagrams:
                    datagrams.append((t - T0_S, data))
            elif stream == 1:
                rtcp_b.receive(rtcp.parse_compound(data), t)
            else:  # as rtai.session.Peer._receive_rtcp
                rtcp_a.receive(rtcp.parse_compound(data), t)
                if rtcp_a.reports_received != reports_seen:
                    reports_seen = rtcp_a.reports_received
                    peer = rtcp_a.peer
                    adapter.on_report(t, peer.fraction_lost, peer.jitter_ms, peer.rtt_ms)
                    if adapter.version != seen_version:
                        seen_version = adapter.version
                        decisions.append(_decision_row(t - T0_S, adapter))

    k = j = 0
    next_a = next_b = T0_S + FIRST_RTCP_S
    while j < n_ticks:
        t_send = T0_S + (k + 1) * block_s if k < k_blocks else math.inf
        t_tick = T0_S + (j + tick_phase) * block_s
        t = min(t_send, t_tick, next_a, next_b)
        deliver(t)
        if t == t_send:
            data = sender.packetize(x[k], T0_S + k * block_s)
            if data is not None:
                media.push(t, data, len(data))
            k += 1
        elif t == t_tick:
            recovered = receiver.counters.fec_recovered
            block, item = receiver.playout(t)
            out[j * n : (j + 1) * n] = block[:, 0]
            if receiver.counters.fec_recovered != recovered:
                kinds[j] = TICK_FEC
            else:
                kinds[j] = _TICK_KIND[item.kind]
            j += 1
        elif t == next_a:
            data = rtcp_a.build(t, sender.timestamp)
            to_b.push(t, data, len(data))
            next_a = t + RTCP_INTERVAL_S * rng.uniform(0.5, 1.5)
        else:
            if rtcp_b.receiver.started:
                data = rtcp_b.build(t, 0)
                to_a.push(t, data, len(data))
            next_b = t + RTCP_INTERVAL_S * rng.uniform(0.5, 1.5)

    enc = sender.encoder
    final = {"bitrate_bps": adapter.decision.settings.bitrate_bps}
    for name in ("fec", "loss_pct", "bitrate_bps", "complexity"):
        if hasattr(enc, name):  # read back from libopus where the codec can tell
            final[name] = getattr(enc, name)
    final["redundancy"] = adapter.decision.redundancy
    return SimRun(
        mode=mode,
        cond=cond,
        output=out,
        t_out0_s=tick_phase * block_s,
        block_frames=n,
        rate_hz=rate_hz,
        duration_s=k_blocks * block_s,
        sent_packets=sender.counters.sent,
        sent_bytes=sender.counters.sent_bytes,
        payload_bytes=sender.stats.octet_count,
        lookahead_frames=int(getattr(enc, "lookahead_frames", 0)),
        receive=asdict(receiver.counters),
        jitter=asdict(receiver.jitter.counters),
        network=media.counters.as_dict(),
        reports_to_sender=rtcp_a.reports_received,
        decisions=decisions,
        final=final,
        kinds=kinds,
        datagrams=datagrams,
    )


def _decision_row(t_s: float, adapter: PathAdapter) -> tuple[float, bool, int, int, int]:
    d = adapter.decision
    s = d.settings
    return (round(t_s, 3), bool(s.fec), int(s.loss_pct), int(s.bitrate_bps), int(d.redundancy))


# --- scoring ---------------------------------------------------------------------------------


def pesq_available() -> bool:
    try:
        import pesq  # noqa: F401
    except ImportError:
        return False
    return True


def stoi_available() -> bool:
    try:
        import pystoi  # noqa: F401
    except ImportError:
        return False
    return True


@dataclass
class Score:
    lag_frames: int  # output[m] ~ input[m - lag]
    delay_ms: float  # mouth-to-ear on the simulated clock: t_out0 + lag
    correlation: float  # of the aligned signals at the full rate
    pesq_wb: float | None
    stoi: float | None
    snr_db: float  # aligned waveform SNR, a crude measure that needs no package
    lag_spread_ms: float  # largest departure of a 2 s window's lag from the whole run's


def align(reference: np.ndarray, output: np.ndarray) -> tuple[int, np.ndarray]:
    """(lag, output aligned to the whole reference): ``aligned[i] = output[i + lag]``,
    and silence where the output has nothing for that stretch of the reference.

    Every output is scored against the same, whole reference: PESQ moves by a tenth
    when its input merely starts or ends a few milliseconds differently, so a receiver
    that plays nothing for a lost first packet must not be scored on a shorter clip.
    """
    lag = find_lag(reference, output)
    aligned = np.zeros(reference.size, dtype=np.float32)
    lo, hi = max(0, -lag), min(reference.size, output.size - lag)
    if hi > lo:
        aligned[lo:hi] = output[lo + lag : hi + lag]
    return lag, aligned


def to_score_rate(x: np.ndarray, rate_hz: int) -> np.ndarray:
    g = math.gcd(SCORE_RATE_HZ, rate_hz)
    return resample_poly(np.asarray(x, dtype=np.float64), SCORE_RATE_HZ // g, rate_hz // g)


def snr_db(ref: np.ndarray, deg: np.ndarray) -> float:
    ref = np.asarray(ref, dtype=np.float64)
    err = np.asarray(deg, dtype=np.float64) - ref
    p_err = float(np.dot(err, err))
    p_ref = float(np.dot(ref, ref))
    if p_err <= 0.0:
        return math.inf
    return 10.0 * math.log10(p_ref / p_err) if p_ref > 0 else -math.inf


def blocks_snr_db(reference: np.ndarray, run: SimRun, lag: int, ticks: np.ndarray) -> float:
    """SNR (dB) of just the output blocks played at playout ticks ``ticks`` (indices),
    against the input they stand for at alignment ``lag`` (e.g. the blocks whose packet
    was lost: how well FEC or concealment rebuilt them)."""
    n = run.block_frames
    idx = (np.asarray(ticks)[:, None] * n + np.arange(n)).ravel()
    src = idx - lag
    ok = (src >= 0) & (src < reference.size)
    return snr_db(reference[src[ok]], run.output[idx[ok]])


def lag_spread_ms(ref: np.ndarray, deg: np.ndarray, rate_hz: int, window_s: float = 2.0) -> float:
    """How far (ms) the best lag of any voiced 2 s window strays from the global alignment
    (``ref`` and ``deg`` already aligned): 0 for a constant delay."""
    w = round(window_s * rate_hz)
    search = round(0.06 * rate_hz)
    worst = 0
    thresh = 1e-3 * float(np.mean(ref.astype(np.float64) ** 2)) * w
    for s in range(search, ref.size - w - search, w):
        r = ref[s : s + w].astype(np.float64)
        if float(np.dot(r, r)) < thresh:
            continue
        d = deg[s - search : s + w + search].astype(np.float64)
        xc = sp_signal.correlate(d, r, mode="valid", method="fft")  # 2 * search + 1 lags
        lag = int(np.argmax(xc)) - search
        worst = max(worst, abs(lag))
    return worst * 1000.0 / rate_hz


def score(
    reference: np.ndarray, output: np.ndarray, t_out0_s: float, rate_hz: int = RATE_HZ
) -> Score:
    """Align ``output`` (played from ``t_out0_s``) with ``reference`` and score it."""
    lag, deg = align(reference, output)
    ref = np.asarray(reference, dtype=np.float32)
    ref16 = to_score_rate(ref, rate_hz)
    deg16 = to_score_rate(deg, rate_hz)
    pesq_wb = stoi = None
    if pesq_available():
        from pesq import PesqError, pesq

        try:
            pesq_wb = float(pesq(SCORE_RATE_HZ, ref16, deg16, "wb"))
        except PesqError:
            pesq_wb = None
    if stoi_available():
        from pystoi import stoi as _stoi

        stoi = float(_stoi(ref16, deg16, SCORE_RATE_HZ, extended=False))
    return Score(
        lag_frames=lag,
        delay_ms=(t_out0_s + lag / rate_hz) * 1000.0,
        correlation=correlation(ref, deg),
        pesq_wb=pesq_wb,
        stoi=stoi,
        snr_db=snr_db(ref, deg),
        lag_spread_ms=lag_spread_ms(ref, deg, rate_hz),
    )
