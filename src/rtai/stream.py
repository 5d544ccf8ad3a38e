"""One direction of plain RTP, no handshake: ``rtai send`` and ``rtai receive``.

For third-party tools (ffmpeg, GStreamer, VLC) that speak RTP/SDP but not rtai's
handshake. Nothing is encrypted: the CLI insists on ``--insecure``.

* :class:`StreamSender` captures from its endpoint and sends L16 or Opus RTP to
  HOST:PORT (one block per packet, marker on the first), with an RTCP sender
  report every second to PORT+1 (RFC 3550 convention) and a BYE at the end.
* :class:`StreamReceiver` listens on PORT, locks onto the first source it hears,
  reshapes its packets into one block each (:mod:`rtai.rtp.normalize`) and plays
  them through the same jitter buffer and playout engine as a call
  (:class:`rtai.media.MediaReceiver`). RTCP (on PORT+1, or muxed on PORT) is read
  and dropped; a BYE ends the stream. The audio endpoint opens on the first
  packet: for Opus the block is that packet's duration.

Threads as in :mod:`rtai.session`: the endpoint's audio thread (copy in, copy
out), a sender thread (encode, sendto) or a network thread (recv, insert).
"""

from __future__ import annotations

import queue
import random
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from rtai import codecs
from rtai.adapt import Limits, PathAdapter
from rtai.audio.endpoint import Endpoint
from rtai.codecs import EncoderSettings
from rtai.delay import DelayManager
from rtai.media import MediaReceiver, MediaSender
from rtai.rtp import rtcp
from rtai.rtp.normalize import StreamNormalizer
from rtai.rtp.packet import MAX_DATAGRAM_BYTES, looks_like_rtp
from rtai.rtp.reporting import RtcpSession

RING_BLOCKS = 64
RTCP_INTERVAL_S = 1.0
RECV_TIMEOUT_S = 0.01
INTERNAL_PT = 96  # payload type of the reshaped packets inside the receiver
INTERNAL_SSRC = 1
OVERFLOW_S = 1.0  # queued audio tolerated beyond the buffer target before dropping


@dataclass
class StreamParams:
    codec: str  # pcm | opus
    rate_hz: int
    channels: int
    block_frames: int
    payload_type: int


class StreamSender:
    """Send what ``endpoint`` captures to ``remote`` as RTP; RTCP to remote port + 1."""

    def __init__(
        self,
        params: StreamParams,
        endpoint: Endpoint,
        sock: socket.socket,
        remote: tuple,
        encoder: EncoderSettings | None = None,
        seconds: float | None = None,
        cname: str = "rtai",
    ) -> None:
        self.params = params
        self.endpoint = endpoint
        self.sock = sock
        self.remote = remote
        self.rtcp_remote = (remote[0], remote[1] + 1, *remote[2:])
        info = codecs.get_codec(params.codec)
        settings = encoder or EncoderSettings()
        limits = Limits(
            max_bitrate_bps=settings.bitrate_bps,
            min_bitrate_bps=settings.bitrate_bps,
            fec="off",
            fec_available=False,
            redundancy=0,
            adaptive=False,
        )
        self.ssrc = random.getrandbits(32)
        self.rtcp = RtcpSession(self.ssrc, 0, info.clock_rate(params.rate_hz), cname)
        self.media = MediaSender(
            info,
            params.rate_hz,
            params.channels,
            params.block_frames,
            params.payload_type,
            self.ssrc,
            PathAdapter(settings, limits),
            self.rtcp.sender,
        )
        self.done = threading.Event()
        self.exit_status = 0
        self._stop = threading.Event()
        self._seconds = seconds
        self._ring = np.zeros((RING_BLOCKS, params.block_frames, params.channels), dtype=np.float32)
        self._adc = np.zeros(RING_BLOCKS)
        self._w = 0
        self._q: queue.SimpleQueue = queue.SimpleQueue()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._t0 = time.monotonic()
        self.endpoint.start(self._audio)
        self._thread = threading.Thread(target=self._loop, name="rtai-send", daemon=True)
        self._thread.start()

    def _audio(self, indata: np.ndarray, outdata: np.ndarray, adc_s: float, dac_s: float) -> None:
        outdata.fill(0.0)
        w = self._w
        slot = w % RING_BLOCKS
        self._ring[slot] = indata
        self._adc[slot] = adc_s
        self._w = w + 1
        self._q.put(w)

    def _loop(self) -> None:
        next_rtcp = time.monotonic() + 0.2
        try:
            while not self._stop.is_set():
                now = time.monotonic()
                if self._seconds is not None and now - self._t0 >= self._seconds:
                    break
                if self.endpoint.input_finished and self._q.empty():
                    break
                if now >= next_rtcp:
                    next_rtcp = now + RTCP_INTERVAL_S * random.uniform(0.5, 1.5)
                    self._send(self.rtcp.build(now, self.media.timestamp), self.rtcp_remote)
                try:
                    w = self._q.get(timeout=0.05)
                except queue.Empty:
                    continue
                if self._w - w > RING_BLOCKS - 1:
                    self.media.skip()
                    continue
                slot = w % RING_BLOCKS
                data = self.media.packetize(self._ring[slot], float(self._adc[slot]))
                if data is not None:
                    self._send(data, self.remote)
        except Exception:
            self.exit_status = 1
            raise
        finally:
            self.done.set()

    def _send(self, data: bytes, addr: tuple) -> None:
        try:
            self.sock.sendto(data, addr)
        except OSError:
            pass  # nobody listening (yet): UDP says so with ICMP; keep sending

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=3.0)
        self._send(self.rtcp.bye("rtai send stopped"), self.rtcp_remote)
        self.endpoint.stop()
        self.sock.close()
        self.done.set()

    def summary(self) -> str:
        c = self.media.counters
        return f"sent {c.sent} packets ({c.sent_bytes} bytes)"


class StreamReceiver:
    """Receive one RTP stream on ``sock`` (and RTCP on ``rtcp_sock``) and play it.

    ``open_endpoint(block_frames)`` builds the output endpoint once the block size is
    known (at the first packet). ``idle_s``: the stream has ended when nothing came
    for this long after it started.
    """

    def __init__(
        self,
        params: StreamParams,
        open_endpoint: Callable[[int], Endpoint],
        sock: socket.socket,
        rtcp_sock: socket.socket | None = None,
        buffer_ms: float = 40.0,
        buffer_auto: bool = False,
        seconds: float | None = None,
        idle_s: float = 3.0,
    ) -> None:
        self.params = params
        self.sock = sock
        self.rtcp_sock = rtcp_sock
        self._open_endpoint = open_endpoint
        self.endpoint: Endpoint | None = None
        self.buffer_ms = buffer_ms
        self.buffer_auto = buffer_auto
        self.seconds = seconds
        self.idle_s = idle_s
        self.done = threading.Event()
        self.exit_status = 0
        self.reason = ""
        self.normalizer: StreamNormalizer | None = None
        self.receiver: MediaReceiver | None = None
        self.rtcp_packets = 0
        self.early_dropped = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._last_rx: float | None = None
        self._announced = False
        self.block_frames = params.block_frames
        self._events: queue.SimpleQueue = queue.SimpleQueue()

    def start(self) -> None:
        self._t0 = time.monotonic()
        if self.params.codec == "pcm":
            self._setup(self.params.block_frames)  # known now: be ready before any packet
        self._threads.append(
            threading.Thread(target=self._loop, name="rtai-receive-net", daemon=True)
        )
        if self.rtcp_sock is not None:
            self._threads.append(
                threading.Thread(target=self._rtcp_loop, name="rtai-receive-rtcp", daemon=True)
            )
        for t in self._threads:
            t.start()

    def events(self) -> list[str]:
        out = []
        while True:
            try:
                out.append(self._events.get_nowait())
            except queue.Empty:
                return out

    # -- audio thread ------------------------------------------------------------------

    def _audio(self, indata: np.ndarray, outdata: np.ndarray, adc_s: float, dac_s: float) -> None:
        rx = self.receiver
        if rx is None:
            outdata.fill(0.0)
            return
        with self._lock:
            block, _ = rx.playout(time.monotonic())
        outdata[:] = block

    # -- network thread ----------------------------------------------------------------

    def _loop(self) -> None:
        self.sock.settimeout(RECV_TIMEOUT_S)
        try:
            while not self._stop.is_set():
                try:
                    data, _ = self.sock.recvfrom(MAX_DATAGRAM_BYTES + 1)
                except (TimeoutError, BlockingIOError):
                    data = None
                except OSError:
                    if self._stop.is_set():
                        return
                    data = None
                now = time.monotonic()
                if data is not None:
                    self._receive(data, now)
                if self.seconds is not None and now - self._t0 >= self.seconds:
                    self._finish("time is up")
                elif self._last_rx is not None and now - self._last_rx > self.idle_s:
                    self._finish(f"nothing received for {self.idle_s:g} s: stream ended")
        except Exception as e:  # never a silent, hung receiver
            self.exit_status = 1
            self._finish(f"internal error in the network thread: {e!r}")

    def _rtcp_loop(self) -> None:
        self.rtcp_sock.settimeout(0.1)
        while not self._stop.is_set():
            try:
                data, _ = self.rtcp_sock.recvfrom(MAX_DATAGRAM_BYTES + 1)
            except (TimeoutError, BlockingIOError):
                continue
            except OSError:
                if self._stop.is_set():
                    return
                continue
            self._rtcp(data)

    def _rtcp(self, data: bytes) -> None:
        """Count RTCP; a BYE from the locked source ends the stream."""
        try:
            packets = rtcp.parse_compound(data)
        except rtcp.RtcpError:
            return
        self.rtcp_packets += 1
        n = self.normalizer
        for p in packets:
            if isinstance(p, rtcp.Bye) and n is not None and n.ssrc in p.ssrcs:
                self._finish("the sender said goodbye (RTCP BYE)")

    def _receive(self, data: bytes, now: float) -> None:
        if len(data) > MAX_DATAGRAM_BYTES or not looks_like_rtp(data):
            self.early_dropped += 1
            return
        if rtcp.is_rtcp(data):  # rtcp-mux senders
            self._rtcp(data)
            return
        if self.normalizer is None:
            block = self._opus_block(data)
            if block is None:
                return
            self._setup(block)
            now = time.monotonic()  # opening the output took time
        self._last_rx = now
        out = self.normalizer.push(data)
        if out:
            with self._lock:
                for d in out:
                    self.receiver.receive(d, now)
        if not self._announced and self.normalizer.counters.accepted:
            self._announced = True
            p = self.params
            self._events.put(
                f"receiving {p.codec} from SSRC {self.normalizer.ssrc:08x}: {p.rate_hz} Hz, "
                f"{p.channels} ch, {self.block_frames}-frame blocks"
            )

    def _opus_block(self, data: bytes) -> int | None:
        """The block size from an Opus packet of the right type: its duration."""
        from rtai.codecs import opus
        from rtai.rtp.packet import RtpError, parse_rtp

        p = self.params
        try:
            pkt = parse_rtp(data)
        except RtpError:
            self.early_dropped += 1
            return None
        if pkt.payload_type != p.payload_type or not pkt.payload:
            self.early_dropped += 1
            return None
        n = opus._library().nb_samples(pkt.payload, p.rate_hz)
        if n <= 0 or opus.check(p.rate_hz, p.channels, n) is not None:
            self.early_dropped += 1
            if n > 0 and not self._announced:
                self._announced = True
                self._events.put(
                    f"Opus packets of {n * 1000 / p.rate_hz:g} ms: rtai plays 2.5 to 20 ms"
                )
            return None
        return n

    def _setup(self, block: int) -> None:
        """Normalizer, jitter buffer and playout for ``block``-frame blocks; open the output."""
        p = self.params
        info = codecs.get_codec(p.codec)
        clock_hz = info.clock_rate(p.rate_hz)
        self.normalizer = StreamNormalizer(
            p.codec, p.payload_type, p.channels, block, clock_hz, INTERNAL_PT, p.rate_hz,
            out_ssrc=INTERNAL_SSRC,
        )  # fmt: skip
        delay = None
        if self.buffer_auto:
            delay = DelayManager(clock_hz, block / p.rate_hz, start_ms=self.buffer_ms)
        self.receiver = MediaReceiver(
            info, p.rate_hz, p.channels, block, INTERNAL_PT, INTERNAL_SSRC, self.buffer_ms,
            delay=delay,
        )  # fmt: skip
        # One way, nobody waits for an answer: a sender's start-up burst (or a late
        # start here) is played, not dropped, unless it exceeds OVERFLOW_S.
        jb = self.receiver.jitter
        jb.overflow_margin_blocks = max(
            jb.overflow_margin_blocks, round(OVERFLOW_S * p.rate_hz / block)
        )
        self.block_frames = block
        self.endpoint = self._open_endpoint(block)
        self.endpoint.start(self._audio)

    def _finish(self, reason: str) -> None:
        if not self.done.is_set():
            self.reason = reason
            self.done.set()

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            if t is not threading.current_thread():
                t.join(timeout=3.0)
        if self.endpoint is not None:
            # let the buffered audio play out before closing a file output
            self.endpoint.stop()
        for s in (self.sock, self.rtcp_sock):
            if s is not None:
                s.close()
        self.done.set()

    def summary(self) -> str:
        if self.normalizer is None:
            return "no stream received"
        n, rc = self.normalizer.counters, self.receiver.counters
        parts = [
            f"received {rc.received} blocks",
            f"{n.accepted} packets",
        ]
        for name in ("wrong_source", "wrong_payload", "malformed", "late"):
            v = getattr(n, name)
            if v:
                parts.append(f"{v} {name.replace('_', ' ')}")
        if rc.decode_errors:
            parts.append(f"{rc.decode_errors} undecodable")
        return ", ".join(parts)
