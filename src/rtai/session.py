"""One peer of a call: wires the audio endpoint, the UDP socket and the pure core.

Threads (see docs/architecture.md):

* the audio thread (PortAudio's callback, or the clocked endpoint's thread) runs
  :meth:`Peer._audio`: it copies the captured block into a preallocated ring and
  posts its index on a ``SimpleQueue``, then pops one playout decision from the
  jitter buffer and writes the decoded or concealed block. No socket calls, no
  logging, and the only lock it takes guards pure jitter-buffer operations.
* the sender thread takes captured blocks from the ring, encodes, packetizes and
  sends them.
* the network thread receives every datagram, demultiplexes handshake, RTP and
  RTCP by the first byte, feeds the jitter buffer and the statistics, and runs
  the timers: handshake retries, RTCP reports, keepalives, peer timeout and the
  ``--seconds`` limit.

The face (CLI, demo, tests) constructs a :class:`Peer`, calls :meth:`Peer.start`,
polls :meth:`Peer.snapshot` and :meth:`Peer.events` and waits on :attr:`Peer.done`.
"""

from __future__ import annotations

import math
import queue
import random
import socket
import threading
import time
from dataclasses import dataclass, field

import numpy as np

from rtai import codecs
from rtai.adapt import Limits, PathAdapter
from rtai.audio.endpoint import Endpoint
from rtai.config import PeerConfig
from rtai.delay import DelayManager
from rtai.handshake import (
    Accept,
    Bye,
    CallerHandshake,
    Confirm,
    HandshakeError,
    Hello,
    Keepalive,
    Liveness,
    MediaParams,
    Reject,
    decode_message,
    encode_message,
    is_handshake,
    local_clock_id,
    negotiate,
    new_session_id,
)
from rtai.jitter import Playout
from rtai.media import MediaReceiver, MediaSender
from rtai.pairing import INSECURE, SECURE, Pairing, PairingError
from rtai.processing import CapturePipeline, ProcessingOptions, TalkControl
from rtai.rtp import rtcp
from rtai.rtp.packet import MAX_DATAGRAM_BYTES, looks_like_rtp
from rtai.rtp.reporting import RtcpSession
from rtai.rtp.srtp import SrtpError
from rtai.security import (
    WRONG_CODE,
    CallerGuard,
    CallGuard,
    ListenerGuard,
    Outcome,
    security_refusal,
)

CAPTURE_RING_BLOCKS = 64
METRIC_RING = 16384  # ~44 s of 128-frame blocks at 48 kHz
RTCP_INTERVAL_S = 1.0
DRAIN_EXTRA_S = 0.3
RECV_TIMEOUT_S = 0.01


@dataclass
class Call:
    """Everything that lives exactly as long as one call."""

    number: int
    session: str
    remote: tuple
    accept: Accept  # the agreed parameters
    remote_ssrc: int
    shared_clock: bool
    sender: MediaSender
    receiver: MediaReceiver
    rtcp: RtcpSession
    liveness: Liveness
    started_s: float
    lock: threading.Lock = field(default_factory=threading.Lock)  # guards receiver
    reports_seen: int = 0
    next_rtcp_s: float = 0.0
    guard: CallGuard = field(default_factory=CallGuard)  # SRTP, or plain for --insecure

    @property
    def adapter(self) -> PathAdapter:
        return self.sender.adapter

    @property
    def codec(self) -> str:
        """The agreed codec's name (the handshake carries its versioned wire name)."""
        return codecs.get_codec(self.accept.codec).name


class MetricRing:
    """A preallocated ring of float samples written by one thread, read by another."""

    def __init__(self, size: int = METRIC_RING) -> None:
        self.values = np.full(size, np.nan)
        self.times = np.full(size, -np.inf)
        self.n = 0

    def add(self, t_s: float, v: float) -> None:
        i = self.n % len(self.values)
        self.values[i] = v
        self.times[i] = t_s
        self.n += 1

    def since(self, t_s: float) -> np.ndarray:
        v = self.values[self.times >= t_s]
        return v[~np.isnan(v)]


def db(level_sq: float) -> float:
    return 10.0 * math.log10(level_sq) if level_sq > 1e-12 else -120.0


class Peer:
    """A caller (``remote`` given) or a listener (``remote`` None) on ``sock``."""

    def __init__(
        self,
        cfg: PeerConfig,
        endpoint: Endpoint,
        sock: socket.socket,
        remote: tuple | None = None,
        name: str = "peer",
        pairing: Pairing | None = None,
    ) -> None:
        """``pairing`` None makes plain (--insecure) calls; otherwise calls are
        authenticated with its code or passphrase and encrypted (docs/security.md)."""
        cfg.validate()
        self.cfg = cfg
        self.endpoint = endpoint
        self.sock = sock
        self.remote = remote
        self.role = "caller" if remote is not None else "listener"
        self.name = name
        self.clock_id = local_clock_id()
        self.ssrc = random.getrandbits(32)
        self.done = threading.Event()
        self.exit_status = 0
        self.call: Call | None = None
        self.calls = 0
        self.finished_calls: list[dict] = []  # statistics of each call when it ended
        self._events: queue.SimpleQueue = queue.SimpleQueue()
        self._stop = threading.Event()
        self._handshake: CallerHandshake | None = None
        self.pairing = pairing
        self.security_mode = INSECURE if pairing is None else SECURE
        self._caller_guard: CallerGuard | None = None
        self._confirm: Confirm | None = None
        self._listener_guard = None if pairing is None else ListenerGuard(pairing)
        self._endpoint_started = False
        self._t0 = time.monotonic()
        self._deadline = None if cfg.seconds is None else self._t0 + cfg.seconds
        self._drain_until: float | None = None
        ch, n = cfg.channels, cfg.block_frames
        self._cap_ring = np.zeros((CAPTURE_RING_BLOCKS, n, ch), dtype=np.float32)
        self._cap_adc = np.zeros(CAPTURE_RING_BLOCKS)
        self._cap_w = 0
        self._cap_q: queue.SimpleQueue = queue.SimpleQueue()
        self._silence = np.zeros((n, ch), dtype=np.float32)
        proc = cfg.processing or ProcessingOptions()
        self.talk = TalkControl(proc.ptt)  # mute / push-to-talk, set by the face
        self.capture = CapturePipeline(cfg.rate_hz, ch, n, proc, self.talk)
        self.latency = MetricRing()
        self.local_delay = MetricRing()
        self.callback_ms = MetricRing()
        self._in_peak_sq = 0.0
        self._out_peak_sq = 0.0
        self._codec_payload_types = {
            codecs.get_codec(c).wire_name: codecs.get_codec(c).payload_type for c in cfg.codecs
        }
        self._threads: list[threading.Thread] = []
        self._last_snapshot: tuple[float, int, int] | None = None

    # -- face API --------------------------------------------------------------------

    def start(self) -> None:
        if self.role == "listener":
            self._start_endpoint()
            self._event("info", "waiting for a caller")
            if self.pairing is not None and self.pairing.code is not None:
                code = self.pairing.code
                self._event(
                    "code", f"the caller needs the code {code}: rtai call HOST --code {code}"
                )
        else:
            if self.pairing is not None:
                self._caller_guard = CallerGuard(self.pairing)
            self._handshake = CallerHandshake(self._hello(), time.monotonic())
            self._event("info", f"calling {self.remote[0]} port {self.remote[1]}")
        for target, nm in ((self._net_loop, "net"), (self._send_loop, "send")):
            t = threading.Thread(target=target, name=f"rtai-{self.name}-{nm}", daemon=True)
            t.start()
            self._threads.append(t)

    def stop(self) -> None:
        """Stop everything; idempotent. Sends a goodbye if a call is up."""
        self._stop.set()
        for t in self._threads:
            t.join(timeout=3.0)
        if self.call is not None:
            self._end_call("hung up", send_bye=True)
        # A caller that never got through leaves no half-made output file behind.
        self.endpoint.stop(abort=self.role == "caller" and self.calls == 0)
        self._endpoint_started = False
        try:
            self.sock.close()
        except OSError:
            pass
        self.done.set()

    def events(self) -> list[tuple[str, str]]:
        out = []
        while True:
            try:
                out.append(self._events.get_nowait())
            except queue.Empty:
                return out

    # -- helpers ---------------------------------------------------------------------

    def _event(self, level: str, text: str) -> None:
        self._events.put((level, text))

    def _start_endpoint(self) -> None:
        if not self._endpoint_started:
            self.endpoint.start(self._audio)
            self._endpoint_started = True

    def _params(self) -> MediaParams:
        c = self.cfg
        usable = tuple(
            info.wire_name
            for info in map(codecs.get_codec, c.codecs)
            if info.check(c.rate_hz, c.channels, c.block_frames) is None
        )
        return MediaParams(c.rate_hz, c.channels, c.block_frames, usable)

    def _hello(self) -> Hello:
        c = self.cfg
        return Hello(
            session=new_session_id(),
            rate_hz=c.rate_hz,
            channels=c.channels,
            block_frames=c.block_frames,
            codecs=tuple(codecs.get_codec(name).wire_name for name in c.codecs),
            ssrc=self.ssrc,
            clock_id=self.clock_id,
            software="rtai",
            **(self._caller_guard.hello_fields() if self._caller_guard else {}),
        )

    def _send(self, data: bytes, addr: tuple) -> None:
        try:
            self.sock.sendto(data, addr)
        except OSError:
            pass  # ICMP port unreachable and friends: the peer timeout handles it

    def _new_call(
        self,
        session: str,
        remote: tuple,
        accept: Accept,
        remote_ssrc: int,
        remote_clock: str,
        now: float,
    ) -> Call:
        info = codecs.get_codec(accept.codec)
        ch, n, rate = accept.channels, accept.block_frames, accept.rate_hz
        self.calls += 1
        cfg = self.cfg
        fec_available = info.has_fec and n * 100 >= rate  # Opus FEC needs 10 ms blocks
        limits = Limits(
            max_bitrate_bps=cfg.encoder.bitrate_bps,
            min_bitrate_bps=min(cfg.encoder.bitrate_bps, 12000),
            fec=cfg.fec,
            fec_available=fec_available,
            redundancy=cfg.redundancy,
            adaptive=cfg.adaptive,
        )
        adapter = PathAdapter(cfg.encoder, limits)
        rtcp_session = RtcpSession(self.ssrc, remote_ssrc, info.clock_rate(rate), cfg.cname)
        pt = self._codec_payload_types.get(accept.codec, accept.payload_type)
        call = Call(
            number=self.calls,
            session=session,
            remote=remote,
            accept=accept,
            remote_ssrc=remote_ssrc,
            shared_clock=remote_clock == self.clock_id,
            sender=MediaSender(info, rate, ch, n, pt, self.ssrc, adapter, rtcp_session.sender),
            receiver=MediaReceiver(
                info,
                rate,
                ch,
                n,
                pt,
                remote_ssrc,
                cfg.buffer_ms,
                rtcp_session.receiver,
                self._delay_manager(info.clock_rate(rate), n / rate),
            ),
            rtcp=rtcp_session,
            liveness=Liveness(now),
            started_s=now,
        )
        call.next_rtcp_s = now + 0.2
        return call

    def _delay_manager(self, clock_hz: int, block_s: float) -> DelayManager | None:
        c = self.cfg
        if not c.buffer_auto:
            return None
        return DelayManager(
            clock_hz,
            block_s,
            safety=c.buffer_safety,
            min_ms=c.buffer_min_ms,
            max_ms=c.buffer_max_ms,
            start_ms=c.buffer_ms,
        )

    def _end_call(self, reason: str, send_bye: bool) -> None:
        call = self.call
        if call is None:
            return
        self.call = None
        now = time.monotonic()
        summary = self._call_stats(call, call.started_s, now - call.started_s, 0)
        summary["ended"] = reason
        self.finished_calls.append(summary)
        if send_bye:
            self._send(call.guard.seal_rtcp(call.rtcp.bye(reason)), call.remote)
            self._send(encode_message(Bye(call.session, reason)), call.remote)
        self._event("info", f"call {call.number} with {_fmt(call.remote)} ended: {reason}")
        if self.role == "caller":
            self.done.set()
        else:
            self._event("info", "waiting for a caller")

    # -- audio thread ----------------------------------------------------------------

    def _audio(self, indata: np.ndarray, outdata: np.ndarray, adc_s: float, dac_s: float) -> None:
        t_start = time.perf_counter()
        call = self.call
        flat_in = indata.reshape(-1)
        self._in_peak_sq = max(self._in_peak_sq, float(np.dot(flat_in, flat_in)) / flat_in.size)
        if call is None:
            outdata.fill(0.0)
        else:
            w = self._cap_w
            slot = w % CAPTURE_RING_BLOCKS
            self._cap_ring[slot] = indata
            self._cap_adc[slot] = adc_s
            self._cap_w = w + 1
            now = time.monotonic()
            with call.lock:
                block, item = call.receiver.playout(now)
            if item.kind is Playout.NORMAL:
                if item.capture_s is not None and call.shared_clock:
                    self.latency.add(now, dac_s - item.capture_s)
                self.local_delay.add(now, dac_s - item.arrival_s)
            outdata[:] = block  # broadcasts a mono call onto every output channel
            self.capture.played(outdata, dac_s, adc_s)  # the echo canceller's reference
            self._cap_q.put(w)  # after the reference, which the sender reads with it
            flat_out = outdata.reshape(-1)
            self._out_peak_sq = max(
                self._out_peak_sq, float(np.dot(flat_out, flat_out)) / flat_out.size
            )
        self.callback_ms.add(time.monotonic(), (time.perf_counter() - t_start) * 1000.0)

    # -- sender thread ---------------------------------------------------------------

    def _send_loop(self) -> None:
        while not self._stop.is_set():
            try:
                w = self._cap_q.get(timeout=0.1)
            except queue.Empty:
                continue
            call = self.call
            if call is None:
                continue
            if self._cap_w - w > CAPTURE_RING_BLOCKS - 1:
                call.sender.skip()  # the ring came round before we took it
                continue
            slot = w % CAPTURE_RING_BLOCKS
            cap = self.capture.process(self._cap_ring[slot], w, float(self._cap_adc[slot]))
            if not cap.send:  # silence (voice-activity DTX), mute or push-to-talk
                call.sender.silence()
                continue
            data = call.sender.packetize(cap.block, cap.capture_s)
            if data is not None:
                self._send(call.guard.seal_rtp(data), call.remote)

    # -- network thread --------------------------------------------------------------

    def _net_loop(self) -> None:
        self.sock.settimeout(RECV_TIMEOUT_S)
        try:
            while not self._stop.is_set() and not self.done.is_set():
                try:
                    data, addr = self.sock.recvfrom(MAX_DATAGRAM_BYTES + 1)
                except (TimeoutError, BlockingIOError):
                    data = None
                except OSError:
                    if self._stop.is_set():
                        return
                    data = None  # e.g. ICMP port unreachable reported on Linux
                now = time.monotonic()
                if data is not None:
                    self._receive(data, addr, now)
                self._timers(now)
        except Exception as e:  # a bug must not leave a silent, hung peer
            self.exit_status = 1
            self._event("error", f"internal error in the network thread: {e!r}")
            self.done.set()

    def _receive(self, data: bytes, addr: tuple, now: float) -> None:
        call = self.call
        if len(data) > MAX_DATAGRAM_BYTES:
            self._count_bad(call, "malformed")
            return
        if call is not None and addr[:2] != call.remote[:2] and not is_handshake(data):
            call.guard.counters.foreign += 1  # another source during a call: not even parsed
            return
        if looks_like_rtp(data):
            if call is None:
                g = self._listener_guard
                if g is not None and g.pending:  # a caller whose CONFIRM was lost?
                    self._guard_outcome(g.on_media(data, addr, rtcp.is_rtcp(data)), addr, now)
                    if self.call is not None:
                        self._receive(data, addr, now)
                return
            is_rtcp = rtcp.is_rtcp(data)
            if call.guard.secure:
                try:
                    data = call.guard.open(data, is_rtcp)
                except SrtpError as e:
                    self._count_refused(call, e.kind)
                    return
            if is_rtcp:
                self._receive_rtcp(call, data, now)
            else:
                self._receive_rtp(call, data, now)
        elif is_handshake(data):
            try:
                msg = decode_message(data)
            except HandshakeError:
                self._count_bad(call, "malformed")
                return
            self._receive_handshake(msg, addr, now)
        else:
            self._count_bad(call, "malformed")

    @staticmethod
    def _count_refused(call: Call, kind: str) -> None:
        g = call.guard.counters
        if hasattr(g, kind):
            setattr(g, kind, getattr(g, kind) + 1)
        else:
            Peer._count_bad(call, kind)  # malformed or wrong_source

    @staticmethod
    def _count_bad(call: Call | None, what: str) -> None:
        if call is not None:
            c = call.receiver.counters
            setattr(c, what, getattr(c, what) + 1)

    def _receive_rtp(self, call: Call, data: bytes, now: float) -> None:
        with call.lock:
            ok = call.receiver.receive(data, now)
        if ok:
            call.liveness.heard(now)

    def _receive_rtcp(self, call: Call, data: bytes, now: float) -> None:
        try:
            packets = rtcp.parse_compound(data)
        except rtcp.RtcpError:
            self._count_bad(call, "malformed")
            return
        call.liveness.heard(now)
        if call.rtcp.receive(packets, now):
            self._end_call("the other side hung up", send_bye=False)
            return
        if call.rtcp.reports_received != call.reports_seen:
            call.reports_seen = call.rtcp.reports_received
            peer = call.rtcp.peer
            call.adapter.on_report(now, peer.fraction_lost, peer.jitter_ms, peer.rtt_ms)

    def _receive_handshake(self, msg, addr: tuple, now: float) -> None:
        call = self.call
        if self.role == "caller":
            hs = self._handshake
            if hs is not None and hs.result is None and addr[:2] == self.remote[:2]:
                result = hs.receive(msg)
                if isinstance(result, Accept) and result.codec not in hs.hello.codecs:
                    self.exit_status = 2
                    self._event(
                        "error",
                        f"the listener answered with codec {result.codec!r}, which this "
                        f"side did not offer ({', '.join(hs.hello.codecs)})",
                    )
                    self.done.set()
                    return
                if isinstance(result, Accept):
                    if self._caller_guard is not None:
                        self._secure_accepted(result, addr, now)
                        return
                    self._accepted(result, addr, now)
                elif isinstance(result, Reject):
                    self.exit_status = 2
                    self._event("error", f"the listener refused the call: {result.reason}")
                    self.done.set()
                return
        elif isinstance(msg, Hello):
            self._on_hello(msg, addr, now)
            return
        elif self._listener_guard is not None and isinstance(msg, Confirm | Reject):
            g = self._listener_guard
            self._guard_outcome(g.on_confirm(msg, addr) if isinstance(msg, Confirm)
                                else g.on_reject(msg, addr), addr, now)  # fmt: skip
            return
        if call is None or addr[:2] != call.remote[:2] or msg.session != call.session:
            return
        if call.guard.secure:
            return  # plain KEEPALIVE and BYE prove nothing: SRTCP does their work
        call.liveness.heard(now)
        if isinstance(msg, Bye):
            why = f": {msg.reason}" if msg.reason else ""
            self._end_call(f"the other side hung up{why}", send_bye=False)

    def _on_hello(self, hello: Hello, addr: tuple, now: float) -> None:
        call = self.call
        if call is not None:
            if hello.session == call.session and addr[:2] == call.remote[:2]:
                self._send(encode_message(call.accept), addr)  # our ACCEPT was lost
            else:
                reason = "the listener is busy with another call; try again later"
                self._send(encode_message(Reject(hello.session, reason)), addr)
            return
        refusal = security_refusal(hello.security, self.security_mode)
        answer = negotiate(
            hello, self._params(), self.ssrc, self.clock_id, self._codec_payload_types
        )
        if refusal is not None:
            answer = Reject(hello.session, refusal)
        if isinstance(answer, Reject):
            self._event("warn", f"refused a call from {_fmt(addr)}: {answer.reason}")
            self._send(encode_message(answer), addr)
            return
        if self._listener_guard is not None:
            self._guard_outcome(self._listener_guard.on_hello(hello, answer, addr, now), addr, now)
            return
        self._send(encode_message(answer), addr)
        self.call = self._new_call(hello.session, addr, answer, hello.ssrc, hello.clock_id, now)
        self._event("info", self._call_line(self.call))

    def _guard_outcome(self, out: Outcome, addr: tuple, now: float) -> None:
        """Carry out what the listener's guard decided."""
        if out.send is not None:
            self._send(encode_message(out.send), addr)
        for level, text in out.events:
            self._event(level, text)
        p = out.established
        if p is not None and self.call is None:
            call = self._new_call(
                p.hello.session, p.addr, p.accept, p.hello.ssrc, p.hello.clock_id, now
            )
            call.guard = CallGuard(p.keys.tx_rx("listener"), p.hello.ssrc)
            self.call = call
            self._event("info", self._call_line(call))

    def _secure_accepted(self, acc: Accept, addr: tuple, now: float) -> None:
        assert self._caller_guard is not None and self._handshake is not None
        hello = self._handshake.hello
        try:
            keys, confirm = self._caller_guard.finish(hello, acc)
        except PairingError as e:
            self.exit_status = 2
            if str(e) == WRONG_CODE:
                self._send(encode_message(Reject(hello.session, WRONG_CODE)), addr)
                what = "code" if self.pairing and self.pairing.code else "passphrase or key"
                self._event(
                    "error",
                    f"wrong {what}: the listener holds another one; check what 'rtai listen' "
                    "printed (codes are one-time: it prints a new one after each call)",
                )
            else:
                self._event("error", f"the key exchange with the listener failed: {e}")
            self.done.set()
            return
        self._send(encode_message(confirm), addr)
        self._confirm = confirm
        call = self._new_call(acc.session, addr, acc, acc.ssrc, acc.clock_id, now)
        call.guard = CallGuard(keys.tx_rx("caller"), acc.ssrc)  # before the sender sees it
        self.call = call
        self._event("info", self._call_line(call))
        self._start_endpoint()

    def _accepted(self, acc: Accept, addr: tuple, now: float) -> None:
        self.call = self._new_call(acc.session, addr, acc, acc.ssrc, acc.clock_id, now)
        self._event("info", self._call_line(self.call))
        self._start_endpoint()

    @staticmethod
    def _call_line(call: Call) -> str:
        a = call.accept
        return (
            f"call {call.number} with {_fmt(call.remote)}: {call.codec}, {a.rate_hz} Hz, "
            f"{a.channels} ch, {a.block_frames}-frame blocks "
            f"({a.block_frames / a.rate_hz * 1000:.2f} ms), "
            + ("encrypted (SRTP AES-128-GCM)" if call.guard.secure else "NOT encrypted")
        )

    def _timers(self, now: float) -> None:
        if self._deadline is not None and now >= self._deadline:
            if self.call is not None:
                self._end_call("time limit reached", send_bye=True)
            self.done.set()
            return
        hs = self._handshake
        if self.role == "caller" and self.call is None and hs is not None:
            if hs.result is None:
                data = hs.poll(now)
                if data is not None:
                    self._send(data, self.remote)
                elif hs.timed_out(now):
                    self.exit_status = 1
                    self._event(
                        "error",
                        f"no answer from {_fmt(self.remote)}; is 'rtai listen' running there "
                        "and reachable?",
                    )
                    self.done.set()
            return
        if self._listener_guard is not None and self._listener_guard.pending:
            self._guard_outcome(self._listener_guard.expire(now), ("", 0), now)
        call = self.call
        if call is None:
            return
        if now >= call.next_rtcp_s:
            call.next_rtcp_s = now + RTCP_INTERVAL_S * random.uniform(0.5, 1.5)
            rtcp_packet = call.rtcp.build(now, call.sender.timestamp)
            self._send(call.guard.seal_rtcp(rtcp_packet), call.remote)
        if call.liveness.keepalive_due(now):
            self._send(encode_message(Keepalive(call.session)), call.remote)
            if self.role == "caller" and call.guard.secure and not call.guard.authenticated:
                self._send(encode_message(self._confirm), call.remote)  # CONFIRM was lost?
        if call.liveness.peer_lost(now):
            self.exit_status = 1 if self.role == "caller" else 0
            self._end_call("the other side stopped answering (timeout)", send_bye=False)
            return
        if self.role == "caller" and self.endpoint.input_finished:
            if self._drain_until is None:
                self._drain_until = now + self.cfg.buffer_ms / 1000.0 + DRAIN_EXTRA_S
            elif now >= self._drain_until:
                self._end_call("input finished", send_bye=True)

    # -- statistics ------------------------------------------------------------------

    def snapshot(self) -> dict:
        """Statistics for the last interval (since the previous snapshot) and totals."""
        now = time.monotonic()
        call = self.call
        prev = self._last_snapshot
        since = prev[0] if prev else now - 1.0
        interval = max(1e-3, now - since)
        cb = self.callback_ms.since(since)
        snap: dict = {
            "t": round(now - self._t0, 3),
            "state": "in call" if call else ("calling" if self.role == "caller" else "waiting"),
            "xruns": self.endpoint.xruns,
            "callback_ms_p99": _r(np.percentile(cb, 99)) if cb.size else None,
        }
        in_sq, out_sq = self._in_peak_sq, self._out_peak_sq
        self._in_peak_sq = self._out_peak_sq = 0.0
        snap["level_in_dbfs"] = round(db(in_sq), 1)
        snap["level_out_dbfs"] = round(db(out_sq), 1)
        snap["encrypted"] = self.security_mode == SECURE
        if self._listener_guard is not None:
            g = self._listener_guard
            snap.update(code=g.pairing.code, wrong_codes=g.wrong_codes,
                        handshakes_limited=g.limiter.refused)  # fmt: skip
        snap.update(self.capture.stats())
        if call is None:
            self._last_snapshot = (now, 0, 0)
            snap.update(sent=0, received=0)
            return snap
        sent_bytes = call.sender.counters.sent_bytes
        prev_bytes = prev[1] if prev and prev[1] <= sent_bytes else 0
        self._last_snapshot = (now, sent_bytes, call.receiver.counters.received_bytes)
        snap.update(self._call_stats(call, since, interval, prev_bytes))
        return snap

    def _call_stats(self, call: Call, since: float, interval: float, prev_bytes: int) -> dict:
        """One call's counters, with rates and distributions over [since, now]."""
        tx, jb, rx = call.sender.counters, call.receiver.jitter, call.rtcp.receiver
        c = call.receiver.counters
        lat = self.latency.since(since)
        local = self.local_delay.since(since)
        engine = call.receiver.engine
        with call.lock:
            buffer_ms = engine.buffered_ms
            target_ms = engine.target_ms
            playout_delay_ms = engine.last_delay_ms
            pc = engine.counters
            tsm_counts = (pc.accelerate, pc.stretch, pc.frames_removed, pc.frames_added,
                          pc.early_stretch)  # fmt: skip
            drift_ppm = engine.delay.drift.ppm if engine.delay is not None else None
            ratio = engine.ratio
            jc = jb.counters
            late, dups, concealed, played = jc.late, jc.duplicates, jc.concealed, jc.played
            overflow, reanchored = jc.overflow_dropped, jc.reanchored
            refill_silent = jc.refill_silent
            redundant_used = jc.redundant_used
        decision = call.adapter.decision
        return dict(
            call=call.number,
            peer=_fmt(call.remote),
            codec=call.codec,
            sent=tx.sent,
            received=c.received,
            lost=max(0, rx.cumulative_lost) if rx.started else 0,
            late=late,
            duplicates=dups,
            malformed=c.malformed,
            wrong_source=c.wrong_source,
            unknown_payload=c.unknown_payload,
            decode_errors=c.decode_errors,
            fec_recovered=c.fec_recovered,
            redundant_used=redundant_used,
            capture_dropped=tx.capture_dropped,
            played=played,
            concealed=concealed - c.fec_recovered + c.decode_errors,
            refill_silent=refill_silent,
            encode_errors=tx.encode_errors,
            dtx_skipped=tx.dtx_skipped,
            overflow_dropped=overflow,
            reanchored=reanchored,
            jitter_ms=_r(rx.jitter_ms) if rx.started else None,
            buffer_ms=_r(buffer_ms),
            buffer_target_ms=_r(target_ms),
            buffer_mode="auto" if engine.adaptive else "fixed",
            playout_delay_ms=_r(playout_delay_ms),
            accelerate=tsm_counts[0],
            stretch=tsm_counts[1],
            frames_removed=tsm_counts[2],
            frames_added=tsm_counts[3],
            early_stretch=tsm_counts[4],  # of the stretches: made while a packet was overdue
            drift_ppm=_r(drift_ppm, 1),
            resample_ppm=_r((ratio - 1.0) * 1e6, 1),
            latency_ms=_r(np.median(lat) * 1000) if lat.size else None,
            latency_ms_p99=_r(np.percentile(lat, 99) * 1000) if lat.size else None,
            local_delay_ms=_r(np.median(local) * 1000) if local.size else None,
            rtt_ms=_r(call.rtcp.peer.rtt_ms),
            peer_loss_pct=_r(call.rtcp.peer.fraction_lost * 100),
            bitrate_kbps=_r((tx.sent_bytes - prev_bytes) * 8 / max(interval, 1e-3) / 1000),
            target_bitrate_kbps=decision.settings.bitrate_bps / 1000,
            fec=decision.settings.fec,
            loss_hint_pct=decision.settings.loss_pct,
            redundancy=decision.redundancy,
            loss_estimate_pct=decision.loss_estimate_pct,
            encrypted=call.guard.secure,
            auth_failed=call.guard.counters.auth_failed,
            replayed=call.guard.counters.replayed,
            foreign=call.guard.counters.foreign,
        )


def _r(v, nd: int = 3):
    return None if v is None else round(float(v), nd)


def _fmt(addr: tuple) -> str:
    host, port = addr[0], addr[1]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
