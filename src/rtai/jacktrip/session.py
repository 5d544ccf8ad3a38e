"""A JackTrip 1.x peer-to-peer peer: rtai in place of ``jacktrip -s`` or ``jacktrip -c``.

JackTrip's peer-to-peer mode has no handshake: each side sends audio packets from
its bound port to the other's. The server (``-s``) binds its port (4464) and
waits; the first datagram tells it the client's address and port, and it sends
back there. The client (``-c HOST``) binds its own port (4464 too, unless told
otherwise: ``-B``) and sends to HOST's port (``-P``, 4464). rtai does the same
with one socket: ``server=True`` waits for the first valid packet and locks onto
its source, else it sends to ``remote`` from the start.

Received packets go through the same jitter buffer and playout engine as a call
(:class:`rtai.media.MediaReceiver`), wrapped as RTP inside the process (sequence
number = JackTrip's, timestamp = blocks since the start) with a private codec
whose decoder reads 32-bit float (exact for every JackTrip resolution). Rate and
bit resolution must match ours (JackTrip itself refuses a mismatch); a peer that
differs is reported once and its packets are dropped. A different buffer size (the
peer's JACK period) is re-cut into our blocks (:class:`Recutter`): JackTrip accepts
it with a warning. The exit packet (63 x 0xFF) ends the session; ours is sent twice
when we stop.
"""

from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass

import numpy as np

from rtai.audio.endpoint import Endpoint
from rtai.codecs import CodecError, CodecInfo
from rtai.codecs.standalone import StandaloneDecoder
from rtai.jacktrip import protocol as jt
from rtai.media import MediaReceiver
from rtai.rtp.packet import RtpPacket
from rtai.rtp.seq import seq_diff

RING_BLOCKS = 64
RECV_TIMEOUT_S = 0.01
INTERNAL_PT = 96
INTERNAL_SSRC = 1


@dataclass
class JackTripParams:
    rate_hz: int = 48000
    channels: int = 2
    block_frames: int = 128
    bits: int = 16
    redundancy: int = 1  # packets per datagram (jacktrip -r)


class Recutter:
    """Blocks of one size, placed by frame position, re-cut into blocks of another (pure).

    ``push(pos_frames, block)`` returns ``(index, block)`` for every output block it
    completes; output block ``index`` starts at frame ``index * block_frames`` of the
    stream (the first push is frame 0). A gap leaves zeros in a partly filled block
    and skips whole blocks (the receiver conceals them); audio before the cursor
    (late, duplicate) is dropped.
    """

    def __init__(self, block_frames: int, channels: int) -> None:
        self.block_frames = block_frames
        self._buf = np.zeros((block_frames, channels), dtype=np.float32)
        self._origin: int | None = None
        self._index = 0
        self._fill = 0

    def push(self, pos_frames: int, block: np.ndarray) -> list[tuple[int, np.ndarray]]:
        f = self.block_frames
        if self._origin is None:
            self._origin = pos_frames
        rel = pos_frames - self._origin
        cursor = self._index * f + self._fill
        n = len(block)
        if rel + n <= cursor:
            return []
        if rel < cursor:
            block = block[cursor - rel :]
            n -= cursor - rel
            rel = cursor
        out: list[tuple[int, np.ndarray]] = []
        if rel >= (self._index + 1) * f:
            if self._fill:
                out.append(self._emit())
            self._index = rel // f
        self._fill = rel - self._index * f
        k = 0
        while k < n:
            take = min(n - k, f - self._fill)
            self._buf[self._fill : self._fill + take] = block[k : k + take]
            self._fill += take
            k += take
            if self._fill == f:
                out.append(self._emit())
        return out

    def _emit(self) -> tuple[int, np.ndarray]:
        item = (self._index, self._buf.copy())
        self._buf.fill(0.0)
        self._index += 1
        self._fill = 0
        return item


class JackTripDecoder(StandaloneDecoder):
    """The playout side of the private codec: JackTrip audio bytes to float32 blocks."""

    def __init__(self, bits: int, rate_hz: int, channels: int, block_frames: int) -> None:
        super().__init__(rate_hz, channels, block_frames)
        self.bits = bits

    def _decode_block(self, payload: bytes) -> np.ndarray:
        block = jt.decode_audio(payload, self.block_frames, self.bits)
        if block.shape[1] != self.channels:
            raise CodecError(f"{block.shape[1]} channels, expected {self.channels}")
        return block


def _codec(bits: int) -> CodecInfo:
    return CodecInfo(
        name=f"jacktrip-{bits}",
        payload_type=INTERNAL_PT,
        make_encoder=None,  # type: ignore[arg-type]  (we packetize ourselves)
        make_decoder=lambda rate, ch, n: JackTripDecoder(bits, rate, ch, n),
        clock_rate=lambda rate: rate,
        check=lambda rate, ch, n: None,
    )


class JackTripPeer:
    def __init__(
        self,
        params: JackTripParams,
        endpoint: Endpoint,
        sock,
        remote: tuple | None,
        buffer_ms: float = 20.0,
        seconds: float | None = None,
    ) -> None:
        if params.rate_hz not in jt.RATE_CODES:
            raise ValueError(
                f"--rate {params.rate_hz}: JackTrip runs at " + ", ".join(map(str, jt.RATE_CODES))
            )
        jt.sample_bytes(params.bits)
        self.params = params
        self.endpoint = endpoint
        self.sock = sock
        self.remote = remote
        self.server = remote is None
        self.seconds = seconds
        self.done = threading.Event()
        self.exit_status = 0
        self.reason = ""
        # Inside, blocks travel as 32-bit float (exact for 8, 16 and 24-bit samples),
        # re-cut to our block size when the peer's JACK period differs.
        self.receiver = MediaReceiver(
            _codec(32),
            params.rate_hz,
            params.channels,
            params.block_frames,
            INTERNAL_PT,
            INTERNAL_SSRC,
            buffer_ms,
        )
        self.sent = 0
        self.received = 0
        self.mismatched = 0
        self.malformed = 0
        self.wrong_source = 0
        self._seq = 0
        self._history: list[bytes] = []
        self._last_seq: int | None = None
        self._ext = 0
        self._peer_frames: int | None = None
        self._recut = Recutter(params.block_frames, params.channels)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._events: queue.SimpleQueue = queue.SimpleQueue()
        self._warned = False
        n, ch = params.block_frames, params.channels
        self._ring = np.zeros((RING_BLOCKS, n, ch), dtype=np.float32)
        self._w = 0
        self._q: queue.SimpleQueue = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []

    # -- face API ----------------------------------------------------------------------

    def start(self) -> None:
        self._t0 = time.monotonic()
        self.endpoint.start(self._audio)
        for target, name in ((self._net_loop, "net"), (self._send_loop, "send")):
            t = threading.Thread(target=target, name=f"rtai-jacktrip-{name}", daemon=True)
            t.start()
            self._threads.append(t)

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=3.0)
        if self.remote is not None:
            for _ in range(2):
                self._send(jt.EXIT_PACKET)
        self.endpoint.stop()
        self.sock.close()
        self.done.set()

    def events(self) -> list[str]:
        out = []
        while True:
            try:
                out.append(self._events.get_nowait())
            except queue.Empty:
                return out

    def summary(self) -> str:
        c = self.receiver.jitter.counters
        parts = [f"sent {self.sent} packets", f"received {self.received}"]
        parts.append(f"played {c.played}, concealed {c.concealed}")
        for name in ("mismatched", "malformed", "wrong_source"):
            v = getattr(self, name)
            if v:
                parts.append(f"{v} {name.replace('_', ' ')}")
        return ", ".join(parts)

    # -- audio thread ------------------------------------------------------------------

    def _audio(self, indata: np.ndarray, outdata: np.ndarray, adc_s: float, dac_s: float) -> None:
        w = self._w
        self._ring[w % RING_BLOCKS] = indata
        self._w = w + 1
        self._q.put(w)
        with self._lock:
            block, _ = self.receiver.playout(time.monotonic())
        outdata[:] = block

    # -- sender thread -----------------------------------------------------------------

    def _send(self, data: bytes) -> None:
        try:
            self.sock.sendto(data, self.remote)
        except OSError:
            pass

    def _send_loop(self) -> None:
        p = self.params
        while not self._stop.is_set():
            try:
                w = self._q.get(timeout=0.1)
            except queue.Empty:
                continue
            if self._w - w > RING_BLOCKS - 1:
                self._seq = (self._seq + 1) & 0xFFFF  # lost before sending: a gap
                continue
            if self.remote is None:
                continue  # a server speaks once it has heard its client
            pkt = jt.build_packet(
                self._ring[w % RING_BLOCKS],
                self._seq,
                time.time_ns() // 1000,
                p.rate_hz,
                p.bits,
                p.channels,
            )
            self._seq = (self._seq + 1) & 0xFFFF
            self._history.insert(0, pkt)
            del self._history[p.redundancy :]
            # Every datagram holds ``redundancy`` packets, the first ones padded with
            # empty (zero) slots as JackTrip pads its own. JackTrip's receiver in some
            # versions (a 2021 source) sizes every read by the first datagram it got,
            # so a short first datagram would cut off all later redundancy; 1.7.0
            # does not (measured), and padding costs two datagrams' bytes.
            empty = bytes(len(pkt)) * (p.redundancy - len(self._history))
            self._send(b"".join(self._history) + empty)
            self.sent += 1

    # -- network thread ----------------------------------------------------------------

    def _net_loop(self) -> None:
        self.sock.settimeout(RECV_TIMEOUT_S)
        try:
            while not self._stop.is_set():
                try:
                    data, addr = self.sock.recvfrom(65536)
                except (TimeoutError, BlockingIOError):
                    data = None
                except OSError:
                    if self._stop.is_set():
                        return
                    data = None
                now = time.monotonic()
                if data is not None:
                    self._receive(data, addr, now)
                if self.seconds is not None and now - self._t0 >= self.seconds:
                    self._finish("time is up")
                if self.endpoint.input_finished:
                    self._finish("the input has been played")
        except Exception as e:
            self.exit_status = 1
            self._finish(f"internal error in the network thread: {e!r}")

    def _receive(self, data: bytes, addr: tuple, now: float) -> None:
        if self.remote is not None and addr[:2] != self.remote[:2]:
            self.wrong_source += 1
            return
        if jt.is_exit_packet(data):
            if self.remote is not None:
                self._finish("the JackTrip peer stopped (exit packet)")
            return
        try:
            packets = jt.parse_datagram(data)
        except jt.JackTripError:
            self.malformed += 1
            return
        p = self.params
        h = packets[0].header
        peer_frames = self._peer_frames or h.buffer_frames
        if (h.rate_hz, h.bits, h.buffer_frames) != (p.rate_hz, p.bits, peer_frames):
            self.mismatched += 1
            if not self._warned:
                self._warned = True
                self._events.put(
                    f"the JackTrip peer sends {h.rate_hz} Hz, {h.bits}-bit, "
                    f"{h.buffer_frames}-frame packets; we use {p.rate_hz} Hz, {p.bits}-bit "
                    "(--rate and --bits must match the peer; its buffer size must not change)"
                )
            return
        if self._peer_frames is None:
            self._peer_frames = h.buffer_frames
            if h.buffer_frames != p.block_frames:
                self._events.put(
                    f"the JackTrip peer sends {h.buffer_frames}-frame packets, we "
                    f"{p.block_frames}: re-cutting its audio (it warns and does the same)"
                )
        if self.remote is None:
            self.remote = addr
            self._events.put(f"JackTrip peer at {addr[0]} port {addr[1]}")
        self.received += 1
        with self._lock:
            for pkt in reversed(packets):  # oldest first
                self._insert(pkt, now)

    def _insert(self, pkt: jt.Packet, now: float) -> None:
        seq = pkt.header.seq
        if self._last_seq is None:
            self._last_seq, self._ext = seq, 0
        else:
            d = seq_diff(seq, self._last_seq)
            if d <= 0:
                return  # an older copy (redundancy) or a duplicate
            self._ext += d
            self._last_seq = seq
        frames = pkt.header.buffer_frames
        block = self._map_channels(jt.decode_audio(pkt.audio, frames, pkt.header.bits))
        n = self.params.block_frames
        for index, out in self._recut.push(self._ext * frames, block):
            payload = jt.encode_audio(out, 32)
            ts = (index * n) & 0xFFFFFFFF
            data = RtpPacket(INTERNAL_PT, index & 0xFFFF, ts, INTERNAL_SSRC, payload).serialize()
            self.receiver.receive(data, now)

    def _map_channels(self, block: np.ndarray) -> np.ndarray:
        """The peer's channels onto ours: extra ones dropped, a mono peer duplicated."""
        have, want = block.shape[1], self.params.channels
        if have == want:
            return block
        if have > want:
            return block[:, :want]
        if have == 0:
            return np.zeros((len(block), want), dtype=np.float32)
        return np.concatenate([block, np.repeat(block[:, -1:], want - have, axis=1)], axis=1)

    def _finish(self, reason: str) -> None:
        if not self.done.is_set():
            self.reason = reason
            self.done.set()
