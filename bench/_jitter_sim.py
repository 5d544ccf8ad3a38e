"""Jitter-buffer replay: the real receive path on a simulated clock, fed a trace.

One direction of a call, built from the very objects the live session runs::

    speech ─► MediaSender.packetize ─► datagram k ─(arrives at trace.arrival_s[k])─►
        MediaReceiver.receive(data, arrival)      MediaReceiver.playout(tick) every block

Times are seconds on the receiver's clock; 0 is the capture of the first input
sample. Packet ``k`` leaves at ``trace.send_s[k]`` (when its block is complete) and
arrives at ``trace.arrival_s[k]``. The receiver ticks every block period of its own
clock at half a block of phase (an unrelated device clock), and arrivals due at or
before a tick are delivered before it. The datagrams are encoded once per trace and
fed to every contender, so all of them see the same bytes at the same times.

Contenders (:class:`Contender`):

* ``fixed``: ``MediaReceiver(delay=None, buffer_ms=depth)``, rtai's fixed buffer (the
  InterCom / JackTrip way: a constant target).
* ``auto``: ``MediaReceiver(delay=DelayManager(...))`` with the CLI's defaults (start at
  20 ms, 0..500 ms, the given safety).
* ``jamulus``: :class:`JamulusReceiver`, a model written here of the idea in Jamulus's
  ``src/buffer.cpp`` (see its docstring), decoding with the same codec.
* GStreamer's ``rtpjitterbuffer``, fed the same datagrams over loopback UDP in real time
  (:func:`run_gst`).

What is measured, the same way for every contender except GStreamer:

* Every ``JitterBuffer.pop`` (what the playout engine decides to play) is logged with its
  kind (normal / conceal / idle) and, for a packet, the time its first sample reaches the
  output: the tick time plus, in auto mode, the decoded audio still queued ahead of it in
  the playout FIFO and the resampler's delay. (A second packet pulled in by an accelerate
  is stamped one block later; the frames the accelerate then removes are not subtracted,
  an error of at most one such packet per accelerate.)
* Added delay of packet ``k`` = playout time - send time - the trace's minimum network
  delay: what the buffer adds on top of a network that always delivered at its fastest.
  It includes the wait for the next tick (0..1 block, the same for every contender).
* Concealed audio = concealed (or, after playout started, silent) blocks / all blocks
  taken since playout started. Packets the buffer throws away (overflow) are counted apart.

GStreamer is measured from its audio instead (it cannot be instrumented per packet):
the delay from the lag of each 1 s window of output against the input, and concealment
from the ``GstRTPPacketLost`` events ``rtpjitterbuffer do-lost=true`` sends.
"""

from __future__ import annotations

import math
import re
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy import signal as sp_signal

from rtai import codecs
from rtai.adapt import Limits, PathAdapter
from rtai.codecs import EncoderSettings
from rtai.delay import DelayManager
from rtai.jitter import Playout
from rtai.media import MediaReceiver, MediaSender
from rtai.rtp.packet import RtpError, parse_rtp
from rtai.rtp.seq import SeqUnwrapper

try:  # the trace module sits next to this file
    from _jitter_traces import Trace
except ImportError:  # pragma: no cover - imported as bench._jitter_sim
    from bench._jitter_traces import Trace

SSRC = 0x5EED_0A0A
FIRST_SEQ = 65000  # the sequence number wraps early in every run
FIRST_TS = 0xFFFF_0000  # and so does the timestamp
TICK_PHASE = 0.5
TAIL_S = 0.6  # ticks continue this long after the last arrival
SCORE_RATE_HZ = 16000

K_IDLE, K_NORMAL, K_CONCEAL, K_CARRY = 0, 1, 2, 3  # per tick; CARRY: no pop (FIFO had audio)
_KIND = {Playout.IDLE: K_IDLE, Playout.NORMAL: K_NORMAL, Playout.CONCEAL: K_CONCEAL}


@dataclass(frozen=True)
class Contender:
    key: str
    label: str
    kind: str  # fixed | auto | jamulus | gst
    depth_ms: float = 0.0  # fixed: target; auto: where it starts; gst: latency
    safety: str = "normal"  # auto only


def fixed(depth_ms: float) -> Contender:
    return Contender(f"fixed{depth_ms:g}", f"fixed {depth_ms:g} ms", "fixed", depth_ms)


def auto(safety: str = "normal") -> Contender:
    return Contender(f"auto-{safety}", f"rtai auto ({safety})", "auto", 20.0, safety)


JAMULUS = Contender("jamulus", "Jamulus-style auto", "jamulus")


# --- packets -------------------------------------------------------------------------------


@dataclass
class Packets:
    """One trace's datagrams, encoded once and shared by every contender."""

    datagrams: list[bytes]
    codec: str
    rate_hz: int
    block_frames: int
    ts_step: int
    lookahead_frames: int
    signal: np.ndarray  # the input, float32 mono, packets * block_frames samples


def encode(
    signal: np.ndarray, packets: int, codec: str, rate_hz: int, block_frames: int
) -> Packets:
    """Packetize ``packets`` blocks of ``signal`` with the real sender. A signal shorter
    than that (a whole number of blocks long) is sent over and over; ``Packets.signal``
    is then just the one loop."""
    info = codecs.get_codec(codec)
    reason = info.check(rate_hz, 1, block_frames)
    if reason:
        raise ValueError(reason)
    settings = EncoderSettings(bitrate_bps=32000, loss_pct=0, complexity=9)
    limits = Limits(
        max_bitrate_bps=32000,
        min_bitrate_bps=32000,
        fec="off",
        fec_available=False,
        redundancy=0,
        adaptive=False,
    )
    sender = MediaSender(
        info, rate_hz, 1, block_frames, info.payload_type, SSRC, PathAdapter(settings, limits)
    )
    sender.seq, sender.timestamp = FIRST_SEQ, FIRST_TS
    need = packets * block_frames
    if signal.size >= need:
        x = np.ascontiguousarray(signal[:need], dtype=np.float32)
    elif signal.size % block_frames == 0 and signal.size > 0:
        x = np.asarray(signal, dtype=np.float32)
    else:
        x = np.zeros(need, dtype=np.float32)
        x[: signal.size] = signal
    blocks = x.reshape(-1, block_frames, 1)
    loop = blocks.shape[0]
    datagrams = []
    for k in range(packets):
        data = sender.packetize(blocks[k % loop], k * block_frames / rate_hz)
        if data is None:
            raise RuntimeError(f"{codec} sent nothing for block {k} (DTX is off here)")
        datagrams.append(data)
    return Packets(
        datagrams,
        codec,
        rate_hz,
        block_frames,
        sender.timestamp_step,
        int(getattr(sender.encoder, "lookahead_frames", 0)),
        x,
    )


# --- the run -------------------------------------------------------------------------------


@dataclass
class Run:
    contender: Contender
    trace_key: str
    rate_hz: int
    block_frames: int
    tick0_s: float  # time of tick 0
    output: np.ndarray | None  # float32 mono, one block per tick (None if not kept)
    tick_kind: np.ndarray  # int8 per tick: K_IDLE / K_NORMAL / K_CONCEAL / K_CARRY
    play_s: np.ndarray  # (K,) when packet k's first sample reached the output; NaN: never
    added_ms: np.ndarray  # (K,) play - send - min network delay; NaN: not played
    pops_normal: int
    pops_concealed: int  # conceal, or idle after playout started
    dropped: int  # packets thrown away unplayed (overflow; Jamulus window moves)
    late: int
    target_ms: np.ndarray  # per tick: the buffer's target (auto) / setting (jamulus)
    counters: dict = field(default_factory=dict)

    @property
    def concealed_pct(self) -> float:
        total = self.pops_normal + self.pops_concealed
        return 100.0 * self.pops_concealed / total if total else 0.0

    @property
    def mean_added_ms(self) -> float:
        a = self.added_ms[~np.isnan(self.added_ms)]
        return float(a.mean()) if a.size else math.nan

    @property
    def p95_added_ms(self) -> float:
        a = self.added_ms[~np.isnan(self.added_ms)]
        return float(np.percentile(a, 95)) if a.size else math.nan


class _PopLog:
    """Wraps a receiver's JitterBuffer.pop (and the engine's FIFO push) to log each pop."""

    def __init__(self, receiver: MediaReceiver, ts_step: int) -> None:
        self.receiver = receiver
        self.engine = receiver.engine
        self.ts_step = ts_step
        self.rate_hz = self.engine.rate_hz
        self.n = self.engine.block_frames
        self.adaptive = self.engine.adaptive
        self.resampler_delay = (
            self.engine._resampler.delay_frames if self.adaptive else 0  # noqa: SLF001
        )
        self.unpushed = 0
        self.pops: list[tuple[float, int, int | None, float]] = []  # (now, kind, ts, at_s)
        self.first_kind: int | None = None
        jb = receiver.jitter
        self._pop = jb.pop
        jb.pop = self.pop
        if self.adaptive:
            self._push = self.engine._push  # noqa: SLF001
            self.engine._push = self.push  # noqa: SLF001

    def pop(self, now_s: float):
        item = self._pop(now_s)
        at = 0
        if self.adaptive:
            at = self.engine._fifo_n + self.unpushed * self.n + self.resampler_delay  # noqa: SLF001
            self.unpushed += 1
        kind = _KIND[item.kind]
        if self.first_kind is None:
            self.first_kind = kind
        self.pops.append((now_s, kind, item.timestamp, at / self.rate_hz))
        return item

    def push(self, x: np.ndarray) -> None:
        self.unpushed = 0
        self._push(x)


def _ticks_for(trace: Trace, block_s: float) -> int:
    last = float(np.nanmax(trace.arrival_s))
    return int(math.ceil((last + TAIL_S) / block_s))


def _events(trace: Trace) -> list[tuple[float, int]]:
    ok = np.flatnonzero(~np.isnan(trace.arrival_s))
    order = np.lexsort((ok, trace.arrival_s[ok]))  # by time, then send order
    return [(float(trace.arrival_s[ok[i]]), int(ok[i])) for i in order]


def _make_receiver(c: Contender, pk: Packets) -> MediaReceiver:
    info = codecs.get_codec(pk.codec)
    n, rate = pk.block_frames, pk.rate_hz
    delay = None
    if c.kind == "auto":
        delay = DelayManager(
            info.clock_rate(rate), n / rate, safety=c.safety, max_ms=500.0, start_ms=c.depth_ms
        )
    depth = c.depth_ms if c.kind == "fixed" else 20.0
    return MediaReceiver(info, rate, 1, n, info.payload_type, SSRC, depth, delay=delay)


def replay(
    c: Contender,
    trace: Trace,
    pk: Packets,
    keep_output: bool = True,
    progress=None,
) -> Run:
    """Play ``trace`` with ``pk``'s datagrams into contender ``c`` on the simulated clock."""
    if c.kind == "jamulus":
        rx = JamulusReceiver(pk)
    elif c.kind in ("fixed", "auto"):
        rx = _RtaiReceiver(c, pk)
    else:
        raise ValueError(f"replay cannot run a {c.kind} contender")
    n, rate = pk.block_frames, pk.rate_hz
    block_s = n / rate
    n_ticks = _ticks_for(trace, block_s)
    out = np.zeros(n_ticks * n, dtype=np.float32) if keep_output else None
    tick_kind = np.zeros(n_ticks, dtype=np.int8)
    target = np.zeros(n_ticks, dtype=np.float32)
    events = _events(trace)
    e = 0
    for j in range(n_ticks):
        t = (j + TICK_PHASE) * block_s
        while e < len(events) and events[e][0] <= t:
            at, k = events[e]
            rx.receive(pk.datagrams[k], at)
            e += 1
        block, kind = rx.tick(t)
        if out is not None:
            out[j * n : (j + 1) * n] = block[:, 0]
        tick_kind[j] = kind
        target[j] = rx.target_ms
        if progress is not None and j % 500 == 0:
            progress(j, n_ticks)
    return rx.result(c, trace, out, tick_kind, target, TICK_PHASE * block_s)


def _count_pops(kinds: list[int]) -> tuple[int, int]:
    """(normal, concealed) pops between the first and the last normal one: before it the
    buffer is filling, after it the stream has ended (the tail is not the buffer's doing)."""
    a = np.asarray(kinds, dtype=np.int8)
    normal = np.flatnonzero(a == K_NORMAL)
    if normal.size == 0:
        return 0, 0
    live = a[normal[0] : normal[-1] + 1]
    return int(normal.size), int(live.size - normal.size)


def _added(trace: Trace, play_s: np.ndarray) -> np.ndarray:
    return (play_s - trace.send_s - trace.min_delay_s) * 1000.0


class _RtaiReceiver:
    def __init__(self, c: Contender, pk: Packets) -> None:
        self.pk = pk
        self.rx = _make_receiver(c, pk)
        self.log = _PopLog(self.rx, pk.ts_step)

    @property
    def target_ms(self) -> float:
        return self.rx.engine.target_ms

    def receive(self, data: bytes, at_s: float) -> None:
        self.rx.receive(data, at_s)

    def tick(self, t: float) -> tuple[np.ndarray, int]:
        self.log.first_kind = None
        block, _item = self.rx.playout(t)
        kind = self.log.first_kind
        return block, K_CARRY if kind is None else kind

    def result(self, c, trace, out, tick_kind, target, tick0_s) -> Run:
        pk = self.pk
        play = np.full(trace.packets, np.nan)
        kinds = []
        for now, kind, ts, at in self.log.pops:
            kinds.append(kind)
            if kind == K_NORMAL:
                k = ((ts - FIRST_TS) & 0xFFFFFFFF) // pk.ts_step
                if 0 <= k < trace.packets:
                    play[k] = now + at
        normal, concealed = _count_pops(kinds)
        jc = self.rx.jitter.counters
        counters = {"jitter": vars_of(jc), "engine": vars_of(self.rx.engine.counters)}
        return Run(
            c,
            trace.key,
            pk.rate_hz,
            pk.block_frames,
            tick0_s,
            out,
            tick_kind,
            play,
            _added(trace, play),
            normal,
            concealed,
            jc.overflow_dropped,
            jc.late,
            target,
            counters,
        )


def vars_of(obj) -> dict:
    return {k: getattr(obj, k) for k in getattr(obj, "__slots__", None) or vars(obj)}


# --- a Jamulus-style auto buffer -------------------------------------------------------------


class _WindowBuffer:
    """A window of ``size`` blocks that follows the arrivals (Jamulus's network buffer
    with sequence numbers, in spirit).

    Packets are placed by sequence number relative to the block to be read next. One that
    lands beyond the window drags the window forward (the blocks it skips are given up);
    one that lands before it drags it back (it plays next, everything later than the new
    window's end is given up). A read of a block that is not there is an error (an
    underrun); writes never fail. So the window settles where the earliest arrivals put
    it: ``size - 1`` blocks of slack for the later ones.
    """

    __slots__ = ("size", "head", "slots", "dropped")

    def __init__(self, size: int) -> None:
        self.size = size
        self.head: int | None = None  # extended seq of the next block to read
        self.slots: dict[int, bytes | None] = {}
        self.dropped = 0

    def put(self, ext: int, payload: bytes | None = None) -> None:
        if self.head is None:
            self.head = ext - self.size + 1  # an empty buffer: it lands at the far end
        diff = ext - self.head
        if diff < 0:
            self.head = ext
            self._trim()
        elif diff >= self.size:
            new_head = ext - self.size + 1
            for s in range(self.head, new_head):
                if self.slots.pop(s, 0) != 0:
                    self.dropped += 1
            self.head = new_head
        self.slots[ext] = payload

    def get(self) -> tuple[bool, bytes | None]:
        if self.head is None:
            return False, None
        had = self.head in self.slots
        payload = self.slots.pop(self.head, None)
        self.head += 1
        return had, payload

    def resize(self, size: int) -> None:
        self.size = size
        self._trim()

    def _trim(self) -> None:
        end = self.head + self.size
        for s in [s for s in self.slots if s >= end]:
            del self.slots[s]
            self.dropped += 1


class _ErrorRate:
    """Moving average of error flags over the last ``length`` events; an error right
    after an error is not counted again (so an outage counts once)."""

    __slots__ = ("flags", "pos", "count", "errors", "prev_error")

    def __init__(self, length: int) -> None:
        self.flags = np.zeros(length, dtype=np.int8)
        self.reset()

    def reset(self) -> None:
        self.flags[:] = 0
        self.pos = self.count = self.errors = 0
        self.prev_error = True

    def update(self, error: bool) -> None:
        if error and self.prev_error:
            return
        self.prev_error = error
        old = int(self.flags[self.pos])
        self.flags[self.pos] = 1 if error else 0
        self.errors += (1 if error else 0) - old
        self.pos = (self.pos + 1) % self.flags.size
        self.count = min(self.count + 1, self.flags.size)

    @property
    def average(self) -> float:
        return self.errors / self.count if self.count else 1.0


class JamulusAuto:
    """Buffer-size decisions in the manner of Jamulus's auto jitter buffer.

    Our own code after the idea described in Jamulus's ``src/buffer.cpp`` (Volker
    Fischer): simulated window buffers of every candidate size run on the same arrivals
    as the real one; each keeps its error rate (underruns per put-or-get event, over the
    last 15 s). The smallest size whose rate is within ``ERROR_BOUND`` is the decision;
    a one-pole filter that rises slowly and falls faster smooths it (fast in the first
    seconds and whenever the current size's rate exceeds ``UP_MAX_BOUND``), and a 0.1
    block hysteresis rounds it to the setting. Jamulus's constants are stated for
    1.33 ms blocks; they are scaled here to keep their meaning in time: the same number
    of errors per second in the bounds, the same time constants in the filter (weight
    ``w ** (T / 1.33 ms)``, as Jamulus itself converts between its block sizes), the same
    15 s of history and 7.5 s of fast start.

    Sizes: 2 .. 20 blocks (Jamulus uses 2 .. 11 of its much shorter blocks; with 10 ms
    blocks that would stop at 100 ms of slack, so the range is widened to 190 ms for
    the spiky profiles here).
    """

    REF_BLOCK_S = 64 / 48000  # Jamulus's constants are for 64-frame blocks at 48 kHz
    ERROR_BOUND_REF = 0.00025
    UP_MAX_BOUND_REF = 0.005
    W_UP_NORMAL_REF = 0.9999975
    W_DOWN_NORMAL_REF = 0.99994999875
    W_UP_FAST_REF = 0.9997499687422
    W_DOWN_FAST_REF = 0.999499875
    HISTORY_S = 15.0
    HYSTERESIS = 0.1
    SIZES = tuple(range(2, 21))

    def __init__(self, block_s: float, start_blocks: int = 2) -> None:
        scale = block_s / self.REF_BLOCK_S
        self.error_bound = self.ERROR_BOUND_REF * scale
        self.up_max_bound = self.UP_MAX_BOUND_REF * scale
        self.w_up, self.w_down = self.W_UP_NORMAL_REF**scale, self.W_DOWN_NORMAL_REF**scale
        self.w_up_fast = self.W_UP_FAST_REF**scale
        self.w_down_fast = self.W_DOWN_FAST_REF**scale
        self.history = max(16, round(2 * self.HISTORY_S / block_s))  # a put and a get per block
        self.sims = [_WindowBuffer(s) for s in self.SIZES]
        self.stats = [_ErrorRate(self.history) for _ in self.SIZES]
        self.setting = start_blocks
        self.filtered = float(start_blocks)
        self.init_counter = self.history // 4

    def on_put(self, ext: int) -> None:
        for sim, st in zip(self.sims, self.stats, strict=True):
            sim.put(ext)
            st.update(False)

    def on_get(self) -> int:
        for sim, st in zip(self.sims, self.stats, strict=True):
            ok, _ = sim.get()
            st.update(not ok)
        self._decide()
        return self.setting

    def _first_within(self, bound: float) -> int | None:
        for size, st in zip(self.SIZES[:-1], self.stats[:-1], strict=True):
            if st.average <= bound:
                return size
        return None

    def _decide(self) -> None:
        decision = self._first_within(self.error_bound) or self.SIZES[-1]
        up_max = self._first_within(self.up_max_bound)
        if up_max is None:
            up_max = self.SIZES[-1]
            self.init_counter = self.history // 4  # something bad: adapt fast again
        fast = False
        if self.init_counter > 0:
            self.init_counter -= 1
            fast = True
        if self.setting < up_max:
            fast = True
        w_up, w_down = (self.w_up_fast, self.w_down_fast) if fast else (self.w_up, self.w_down)
        w = w_down if decision < self.filtered else w_up
        self.filtered = self.filtered * w + (1.0 - w) * decision
        # Hysteresis around the current setting (so it does not flip on every get).
        if self.filtered > self.setting:
            self.setting = int(math.floor(self.filtered - self.HYSTERESIS + 0.5))
        else:
            self.setting = int(math.floor(self.filtered + self.HYSTERESIS + 0.5))
        self.setting = min(max(self.setting, self.SIZES[0]), self.SIZES[-1])
        if self.init_counter == self.history // 8 and self.stats[-1].average > self.error_bound:
            for st in self.stats:  # a bad start: forget it
                st.reset()


class JamulusReceiver:
    """A receiver whose jitter buffer is a :class:`_WindowBuffer` sized by
    :class:`JamulusAuto`, decoding and concealing with rtai's codec."""

    def __init__(self, pk: Packets) -> None:
        self.pk = pk
        info = codecs.get_codec(pk.codec)
        self.decoder = info.make_decoder(pk.rate_hz, 1, pk.block_frames)
        self.block_s = pk.block_frames / pk.rate_hz
        self.auto = JamulusAuto(self.block_s)
        self.buf = _WindowBuffer(self.auto.setting)
        self.unwrap = SeqUnwrapper()
        self.silence = np.zeros((pk.block_frames, 1), dtype=np.float32)
        self.pops: list[tuple[float, int, int | None]] = []  # (now, kind, ext)
        self.ext0: int | None = None
        self.started = False
        self.setting_changes = 0

    @property
    def target_ms(self) -> float:
        return 1000.0 * self.auto.setting * self.block_s

    def receive(self, data: bytes, at_s: float) -> None:
        try:
            pkt = parse_rtp(data)
        except RtpError:
            return
        ext = self.unwrap.unwrap(pkt.sequence_number)
        if self.ext0 is None:
            self.ext0 = ext
        self.buf.put(ext, pkt.payload)
        self.auto.on_put(ext)

    def tick(self, t: float) -> tuple[np.ndarray, int]:
        head = self.buf.head
        ok, payload = self.buf.get()
        setting = self.auto.on_get()
        if setting != self.buf.size:
            self.buf.resize(setting)
            self.setting_changes += 1
        if ok and payload is not None:
            self.started = True
            self.pops.append((t, K_NORMAL, head))
            return self.decoder.decode(payload), K_NORMAL
        if not self.started:
            self.pops.append((t, K_IDLE, None))
            return self.silence, K_IDLE
        self.pops.append((t, K_CONCEAL, None))
        return self.decoder.conceal(), K_CONCEAL

    def result(self, c, trace, out, tick_kind, target, tick0_s) -> Run:
        play = np.full(trace.packets, np.nan)
        for now, kind, ext in self.pops:
            if kind == K_NORMAL:
                k = ext - self.ext0
                if 0 <= k < trace.packets:
                    play[k] = now
        normal, concealed = _count_pops([p[1] for p in self.pops])
        counters = {
            "setting_changes": self.setting_changes,
            "final_setting_blocks": self.auto.setting,
        }
        return Run(
            c,
            trace.key,
            self.pk.rate_hz,
            self.pk.block_frames,
            tick0_s,
            out,
            tick_kind,
            play,
            _added(trace, play),
            normal,
            concealed,
            self.buf.dropped,
            0,
            target,
            counters,
        )


# --- scoring -------------------------------------------------------------------------------


def pesq_available() -> bool:
    try:
        import pesq  # noqa: F401
    except ImportError:
        return False
    return True


def to_score_rate(x: np.ndarray, rate_hz: int) -> np.ndarray:
    if rate_hz == SCORE_RATE_HZ:
        return np.asarray(x, dtype=np.float64)
    from scipy.signal import resample_poly

    g = math.gcd(SCORE_RATE_HZ, rate_hz)
    return resample_poly(np.asarray(x, dtype=np.float64), SCORE_RATE_HZ // g, rate_hz // g)


def local_lag(ref: np.ndarray, out: np.ndarray, start: int, guess: int, search: int) -> int | None:
    """Lag (samples) that best aligns ``ref[start:]``'s window ``len`` with ``out``, searched
    within ``guess +/- search``; None if the output does not cover the search."""
    w = ref.size
    lo = start + guess - search
    hi = start + guess + w + search
    if lo < 0 or hi > out.size:
        lo, hi = max(0, lo), min(out.size, hi)
        if hi - lo < w + 1:
            return None
    seg = out[lo:hi].astype(np.float64)
    xc = sp_signal.correlate(seg, ref.astype(np.float64), mode="valid", method="fft")
    return int(np.argmax(xc)) + lo - start


def windowed_pesq(
    reference: np.ndarray,
    output: np.ndarray,
    rate_hz: int,
    first_lag: int,
    window_s: float = 8.0,
    skip_s: float = 2.0,
    search_s: float = 0.5,
) -> tuple[float | None, int]:
    """Mean PESQ-WB over consecutive ``window_s`` windows of the reference, each scored
    against the output at its own best lag (within ``search_s`` of the last one).

    A time-scaling buffer changes its delay as it goes, and a fixed one jumps when it
    rebuffers or drops; one global alignment would score those delay changes as
    distortion, which no listener hears as such. Per-window alignment removes them;
    within a window PESQ's own utterance alignment follows smaller changes (P.862 was
    built for VoIP delay variation). The first ``skip_s`` (buffer start-up) is skipped.
    """
    if not pesq_available():
        return None, 0
    from pesq import PesqError, pesq

    ref16 = to_score_rate(reference, rate_hz)
    out16 = to_score_rate(output, rate_hz)
    scale = SCORE_RATE_HZ / rate_hz
    w = round(window_s * SCORE_RATE_HZ)
    search = round(search_s * SCORE_RATE_HZ)
    lag = round(first_lag * scale)
    scores = []
    energy_floor = 1e-6
    for start in range(round(skip_s * SCORE_RATE_HZ), ref16.size - w + 1, w):
        r = ref16[start : start + w]
        if float(np.mean(r * r)) < energy_floor:
            continue
        found = local_lag(r, out16, start, lag, search)
        if found is None:
            continue
        lag = found
        d = out16[start + lag : start + lag + w]
        try:
            scores.append(float(pesq(SCORE_RATE_HZ, r, d, "wb")))
        except PesqError:
            continue
    return (float(np.mean(scores)) if scores else None), len(scores)


def first_lag_estimate(run: Run, trace: Trace, lookahead_frames: int = 0) -> int:
    """The output lag (samples) of the first played packet, from the pop log."""
    ok = np.flatnonzero(~np.isnan(run.play_s))
    if ok.size == 0:
        return 0
    k = int(ok[0])
    n, rate = run.block_frames, run.rate_hz
    # Output sample at time t is index (t - tick0) * rate; packet k's first sample is
    # input sample k * n - lookahead.
    out_index = (run.play_s[k] - run.tick0_s) * rate
    return int(round(out_index - (k * n - lookahead_frames)))


def audio_delay_ms(
    reference: np.ndarray,
    output: np.ndarray,
    t_out0_s: float,
    rate_hz: int,
    trace: Trace,
    lookahead_frames: int,
    first_lag: int,
    window_s: float = 1.0,
    search_s: float = 0.5,
) -> np.ndarray:
    """Added delay (ms) of each voiced ``window_s`` window, measured from the audio:
    output time of the window minus its capture time, minus one block (packetization),
    the codec delay and the trace's minimum network delay."""
    w = round(window_s * rate_hz)
    search = round(search_s * rate_hz)
    sender_period = trace.send_s[1] - trace.send_s[0]
    block_frames = round(trace.block_s * rate_hz)
    sample_s = sender_period / block_frames  # one input sample in receiver time
    lag = first_lag
    rms = float(np.sqrt(np.mean(reference.astype(np.float64) ** 2)))
    out = []
    for start in range(0, reference.size - w + 1, w):
        r = reference[start : start + w]
        if float(np.sqrt(np.mean(r.astype(np.float64) ** 2))) < 0.3 * rms:
            continue
        found = local_lag(r, output, start, lag, search)
        if found is None:
            continue
        lag = found
        played = t_out0_s + (start + lag) / rate_hz
        captured = start * sample_s
        out.append(
            (played - captured - sender_period - lookahead_frames / rate_hz - trace.min_delay_s)
            * 1000.0
        )
    return np.array(out)


# --- GStreamer -------------------------------------------------------------------------------

_LOST = re.compile(r"GstRTPPacketLost.*?duration=\(guint64\)(\d+)")


@dataclass
class GstRun:
    key: str
    latency_ms: int
    output: np.ndarray | None  # the timeline an audio sink would play (see gst_pipeline)
    t_out0_s: float  # simulated time of output[0]
    lost_events: int
    lost_s: float  # audio the lost-packet events announced (concealed by opusdec)
    added_s: float = 0.0  # silence audiorate put in where the timestamps jumped ahead
    dropped_s: float = 0.0  # audio it dropped where they went back
    error: str | None = None


def gst_pipeline(port: int, latency_ms: int, wav: Path) -> list[str]:
    """As bench/_quality_gst.py's receiver, with an ``identity`` after the jitter buffer
    that reports every lost-packet event, without in-band FEC (none is sent), and with an
    ``audiorate`` before the outputs: it makes the stream follow its timestamps as an audio
    sink does (silence where they jump ahead, samples dropped where they go back, both only
    beyond its 40 ms tolerance, GstAudioBaseSink's alignment threshold too), and reports
    how many samples it added and dropped."""
    import _quality_gst as gst

    return [
        gst.GST_LAUNCH, "-e", "-v",
        "udpsrc", "address=127.0.0.1", f"port={port}", f"caps={gst.OPUS_CAPS}", "!",
        "rtpjitterbuffer", f"latency={latency_ms}", "do-lost=true", "!",
        "identity", "name=lostwatch", "silent=false", "!",
        "rtpopusdepay", "!", "opusdec", "plc=true", "use-inband-fec=false", "!",
        "audioconvert", "!", "audioresample", "!", "audio/x-raw,rate=48000,channels=1", "!",
        "audiorate", "name=rate", "skip-to-first=true", "silent=false", "!",
        "tee", "name=t",
        "t.", "!", "queue", "!", "wavenc", "!", "filesink", f"location={wav}",
        "t.", "!", "queue", "!", "fakesink", "sync=true", "processing-deadline=0",
        "silent=false",
    ]  # fmt: skip


def run_gst(
    streams: list[tuple[str, int, list[tuple[float, bytes]]]],
    workdir: Path,
    progress=None,
) -> list[GstRun]:
    """Play each ``(key, latency_ms, [(release_s, datagram)])`` into its own GStreamer
    receiver, all at once, in real time (as bench/_quality_gst.run_streams, whose process
    handling and output reading this reuses)."""
    import _quality_gst as gst

    procs, lost = [], []
    wall0 = time.monotonic()
    try:
        for key, latency, datagrams in streams:
            port = gst._free_udp_port()
            wav = workdir / f"gst-jitter-{key}.wav"
            proc = subprocess.Popen(
                gst_pipeline(port, latency, wav),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            p = gst._Proc(gst.GstStream(key, datagrams, fec=False), port, wav, proc)
            sink: list[float] = []
            count: dict = {}
            p.reader = threading.Thread(target=_read_gst, args=(p, sink, count), daemon=True)
            p.reader.start()
            procs.append(p)
            lost.append((sink, count))
        deadline = time.monotonic() + gst.READY_TIMEOUT_S
        for p in procs:
            if not p.ready.wait(max(0.0, deadline - time.monotonic())):
                raise RuntimeError(
                    f"gst-launch-1.0 for {p.stream.key} did not start: " + " / ".join(p.other[-5:])
                )
        time.sleep(0.3)
        wall0, _ = gst.replay(procs, max(s[1] for s in streams) / 1000, progress)
    finally:
        for p in procs:
            gst._stop(p)
    runs = []
    for p, (key, latency, _), (ls, count) in zip(procs, streams, lost, strict=True):
        runs.append(_gst_run(p, key, latency, wall0, ls, count))
    return runs


_RATE_COUNT = re.compile(r"GstAudioRate:rate: (add|drop) = (\d+)")


def _gst_run(p, key: str, latency: int, wall0: float, lost: list[float], counts: dict) -> GstRun:
    """The WAV, which audiorate made follow the timestamps, starts at the first buffer's due
    time ``pts + c`` on the wall clock (``c``: the 1st percentile of report time - pts, as in
    bench/_quality_gst.py; fakesink sync=true renders within a millisecond of it), mapped
    to the simulated clock through the pacing start. Only the first buffers' times are
    needed; the last few reports may be cut off by the end of stream."""
    import _quality_gst as gst
    import soundfile as sf

    walls, pts = [], []
    for wall, line in p.lines:
        m = gst._CHAIN.search(line)
        if m:
            walls.append(wall)
            pts.append(int(m.group(2)) * 3600 + int(m.group(3)) * 60 + float(m.group(4)))
    nlost, lost_s = len(lost), sum(lost)
    if not pts:
        err = "no audio buffers reported: " + " / ".join(p.other[-4:])
        return GstRun(key, latency, None, 0.0, nlost, lost_s, error=err)
    try:
        audio, rate = sf.read(p.wav, dtype="float32", always_2d=True)
    except (OSError, RuntimeError) as exc:
        return GstRun(key, latency, None, 0.0, nlost, lost_s, error=f"unreadable WAV: {exc}")
    c = float(np.percentile(np.array(walls) - np.array(pts), gst.RENDER_OFFSET_PERCENTILE))
    return GstRun(
        key, latency, np.ascontiguousarray(audio[:, 0]), pts[0] + c - wall0, nlost, lost_s,
        counts.get("add", 0) / rate, counts.get("drop", 0) / rate,
    )  # fmt: skip


def _read_gst(p, lost: list[float], counts: dict) -> None:
    """Like _quality_gst._read, and also collects the lost-packet events and audiorate's
    sample counts."""
    assert p.proc.stdout is not None
    for raw in iter(p.proc.stdout.readline, b""):
        now = time.monotonic()
        line = raw.decode(errors="replace").rstrip()
        if "fakesink" in line and "last-message = chain" in line:
            p.lines.append((now, line))
            continue
        if "GstRTPPacketLost" in line:
            m = _LOST.search(line)
            if m:
                lost.append(int(m.group(1)) / 1e9)
            continue
        m = _RATE_COUNT.search(line)
        if m:
            counts[m.group(1)] = int(m.group(2))
            continue
        if "last-message" in line:
            continue
        if "Setting pipeline to PLAYING" in line or "New clock" in line:
            p.ready.set()
        if "caps = " not in line:
            p.other.append(line)
            del p.other[:-30]
