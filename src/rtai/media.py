"""One direction of media each way for one call, pure (sans-I/O).

:class:`MediaSender` turns captured blocks into RTP datagrams: encode, carry
earlier blocks along (RFC 2198) when asked, stamp the capture time, packetize.
:class:`MediaReceiver` takes datagrams in and gives one block to play per
playout tick: it parses and checks them, feeds the jitter buffer, and at playout
time decodes, rebuilds a missing block from the next packet's FEC, or conceals.

Both take times from the caller and touch no socket, thread or device, so the
live session (:mod:`rtai.session`) and the offline quality benchmark run exactly
the same code.
"""

from __future__ import annotations

import collections
import random
from dataclasses import dataclass

import numpy as np

from rtai.adapt import PathAdapter
from rtai.codecs import CodecError, CodecInfo
from rtai.delay import DelayManager
from rtai.jitter import JitterBuffer, PlayoutItem
from rtai.playout import PlayoutEngine
from rtai.rtp.extensions import (
    ABS_CAPTURE_TIME_ID,
    decode_abs_capture_time,
    encode_abs_capture_time,
)
from rtai.rtp.packet import RtpError, RtpPacket, parse_rtp
from rtai.rtp.receiver_stats import ReceiverStats, SenderStats
from rtai.rtp.red import RED_PAYLOAD_TYPE, decode_red, encode_red
from rtai.rtp.seq import seq_add, ts_diff

MAX_RED_BACK_BLOCKS = 64
DTX_MAX_BYTES = 2
CAPTURE_TIME_EVERY = 25  # packets between abs-capture-time extensions


@dataclass
class SendCounters:
    sent: int = 0
    sent_bytes: int = 0
    encode_errors: int = 0
    capture_dropped: int = 0
    dtx_skipped: int = 0


@dataclass
class ReceiveCounters:
    received: int = 0
    received_bytes: int = 0
    malformed: int = 0
    wrong_source: int = 0
    unknown_payload: int = 0
    decode_errors: int = 0
    fec_recovered: int = 0


class MediaSender:
    def __init__(
        self,
        codec: CodecInfo,
        rate_hz: int,
        channels: int,
        block_frames: int,
        payload_type: int,
        ssrc: int,
        adapter: PathAdapter,
        stats: SenderStats | None = None,
    ) -> None:
        self.payload_type = payload_type
        self.ssrc = ssrc
        self.channels = channels
        self.adapter = adapter
        self.encoder = codec.make_encoder(
            rate_hz, channels, block_frames, adapter.decision.settings
        )
        self.timestamp_step = codec.timestamp_step(rate_hz, block_frames)
        self._lookahead_s = self.encoder.lookahead_frames / rate_hz
        self.stats = stats or SenderStats()
        self.counters = SendCounters()
        self.seq = random.getrandbits(16)
        self.timestamp = random.getrandbits(32)
        self._first = True
        self._applied_version = adapter.version
        self._history: collections.deque = collections.deque(maxlen=3)

    def skip(self) -> None:
        """A captured block was lost before encoding: keep the timeline honest."""
        self.counters.capture_dropped += 1
        self.timestamp = (self.timestamp + self.timestamp_step) & 0xFFFFFFFF

    def silence(self) -> None:
        """A block held back on purpose (voice-activity DTX, mute, push-to-talk): nothing
        is sent, the timestamp moves on, and the next packet starts a talkspurt (marker)."""
        self.counters.dtx_skipped += 1
        self.timestamp = (self.timestamp + self.timestamp_step) & 0xFFFFFFFF
        self._first = True

    def packetize(self, block: np.ndarray, capture_s: float | None) -> bytes | None:
        """Encode one block (frames, channels) into an RTP datagram, or None when there is
        nothing to send (an encoder error, counted, or a DTX frame)."""
        if block.shape[1] > self.channels:
            block = block.mean(axis=1, keepdims=True, dtype=np.float32)
        decision = self.adapter.decision
        if self._applied_version != self.adapter.version:
            self.encoder.configure(decision.settings)
            self._applied_version = self.adapter.version
        try:
            payload = self.encoder.encode(block)
        except CodecError:
            self.counters.encode_errors += 1
            self.skip()
            return None
        if decision.settings.dtx and len(payload) <= DTX_MAX_BYTES:
            # Opus DTX: a frame this small says "nothing new"; it is not sent (RFC 7587
            # section 3.3), so silence costs nothing on the wire. The timestamp moves on.
            self.counters.dtx_skipped += 1
            self.timestamp = (self.timestamp + self.timestamp_step) & 0xFFFFFFFF
            return None
        pt, body = self.payload_type, payload
        if decision.redundancy:
            older = list(self._history)[-decision.redundancy :]
            body = encode_red(
                pt, payload, [((self.timestamp - ts) & 0xFFFFFFFF, p) for ts, p in older]
            )
            pt = RED_PAYLOAD_TYPE
        self._history.append((self.timestamp, payload))
        extensions = {}
        if capture_s is not None and self.counters.sent % CAPTURE_TIME_EVERY == 0:
            # The decoded block starts with audio captured lookahead_frames earlier. Sent
            # on every CAPTURE_TIME_EVERY-th packet: the receiver carries the time along
            # the RTP timestamps in between (16 bytes a packet would be 13 kbit/s at 10 ms).
            capture_s -= self._lookahead_s
            extensions[ABS_CAPTURE_TIME_ID] = encode_abs_capture_time(capture_s)
        data = RtpPacket(
            payload_type=pt,
            sequence_number=self.seq,
            timestamp=self.timestamp,
            ssrc=self.ssrc,
            payload=body,
            marker=self._first,
            extensions=extensions,
        ).serialize()
        self._first = False
        self.seq = seq_add(self.seq, 1)
        self.timestamp = (self.timestamp + self.timestamp_step) & 0xFFFFFFFF
        self.stats.on_packet_sent(len(payload))
        self.counters.sent += 1
        self.counters.sent_bytes += len(data)
        return data


class MediaReceiver:
    def __init__(
        self,
        codec: CodecInfo,
        rate_hz: int,
        channels: int,
        block_frames: int,
        payload_type: int,
        remote_ssrc: int,
        buffer_ms: float,
        stats: ReceiverStats | None = None,
        delay: DelayManager | None = None,
    ) -> None:
        """``buffer_ms`` is the fixed jitter-buffer target; with a ``delay`` manager the
        target adapts instead (see :mod:`rtai.playout`)."""
        self.payload_type = payload_type
        self.remote_ssrc = remote_ssrc
        self.jitter = JitterBuffer(block_frames, rate_hz, buffer_ms)
        self.decoder = codec.make_decoder(rate_hz, channels, block_frames)
        self.delay = delay
        self.timestamp_step = codec.timestamp_step(rate_hz, block_frames)
        self.stats = stats or ReceiverStats(codec.clock_rate(rate_hz))
        self.counters = ReceiveCounters()
        self._capture_ref: tuple[int, float] | None = None
        self._clock_hz = codec.clock_rate(rate_hz)
        self.engine = PlayoutEngine(
            self.jitter, self.decoder, block_frames, channels, rate_hz, self.counters, delay
        )

    def receive(self, data: bytes, now_s: float) -> bool:
        """Take one RTP datagram from the peer; False if it was dropped (and counted)."""
        c = self.counters
        try:
            pkt = parse_rtp(data)
        except RtpError:
            c.malformed += 1
            return False
        if pkt.ssrc != self.remote_ssrc:
            c.wrong_source += 1
            return False
        payload, redundant = pkt.payload, ()
        if pkt.payload_type == RED_PAYLOAD_TYPE:
            try:
                blocks = decode_red(pkt.payload)
            except RtpError:
                c.malformed += 1
                return False
            if blocks[-1].payload_type != self.payload_type:
                c.unknown_payload += 1
                return False
            payload, redundant = blocks[-1].data, blocks[:-1]
        elif pkt.payload_type != self.payload_type:
            c.unknown_payload += 1
            return False
        capture_s = self._capture_time(pkt)
        c.received += 1
        c.received_bytes += len(data)
        self.stats.on_packet(pkt.sequence_number, pkt.timestamp, now_s)
        if self.delay is not None:
            self.delay.on_arrival(pkt.timestamp, now_s)
        self.jitter.insert(pkt.sequence_number, payload, now_s, capture_s, timestamp=pkt.timestamp)
        for b in redundant:
            back, rem = divmod(b.timestamp_offset, self.timestamp_step)
            if rem == 0 and b.payload_type == self.payload_type and 0 < back < MAX_RED_BACK_BLOCKS:
                seq = (pkt.sequence_number - back) & 0xFFFF
                ts = (pkt.timestamp - b.timestamp_offset) & 0xFFFFFFFF
                self.jitter.insert(seq, b.data, now_s, None, redundant=True, timestamp=ts)
        return True

    def _capture_time(self, pkt: RtpPacket) -> float | None:
        """The packet's capture time: from its header extension, or carried from the
        last one seen along the RTP timestamps (the sender's sample clock)."""
        body = pkt.extensions.get(ABS_CAPTURE_TIME_ID)
        if body is not None:
            try:
                self._capture_ref = (pkt.timestamp, decode_abs_capture_time(body))
            except RtpError:
                pass
        if self._capture_ref is None:
            return None
        ref_ts, ref_s = self._capture_ref
        return ref_s + ts_diff(pkt.timestamp, ref_ts) / self._clock_hz

    def playout(self, now_s: float) -> tuple[np.ndarray, PlayoutItem]:
        """The block to play now, decided now: decoded, FEC-rebuilt, concealed, time-scaled
        or silence. The returned array is valid until the next call."""
        return self.engine.next_block(now_s)
