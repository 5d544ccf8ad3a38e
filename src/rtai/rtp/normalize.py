"""Third-party RTP made rtai-shaped: one block per packet, steady numbering (pure).

rtai's receiver (:class:`rtai.media.MediaReceiver`) expects what another rtai
sends: one source, one block of exactly ``block_frames`` frames per packet, the
timestamp advancing one block per sequence number. Real senders differ:

* L16 senders pack as many samples as fit the MTU (ffmpeg: 1400-byte payloads,
  about 14.6 ms at 48 kHz mono) and the last packet is shorter. Samples are placed
  by their RTP timestamp and cut into blocks (:class:`StreamNormalizer` with
  ``pcm``); a gap in the timestamps leaves zeros in a partly filled block, a whole
  missing block is a missing sequence number that the receiver conceals.
* Opus senders send one Opus packet per RTP packet; its duration is the block.
  Timestamps are renumbered from the sequence numbers, so a first step that is
  not one block (encoder pre-skip, a sender restarting its clock) does not reach
  the delay estimator.
* The marker bit is set on every packet by some senders: it is ignored.
* The SSRC is not known in advance: the stream locks onto the first source it
  hears and counts packets of any other (``wrong_source``).

Output datagrams carry ``out_payload_type`` and SSRC ``out_ssrc``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rtai.rtp.packet import RtpError, RtpPacket, parse_rtp
from rtai.rtp.seq import seq_diff, ts_diff

RESYNC_S = 2.0  # a timestamp jump larger than this restarts the timeline


@dataclass
class NormalizeCounters:
    accepted: int = 0
    malformed: int = 0
    wrong_source: int = 0
    wrong_payload: int = 0
    late: int = 0
    resyncs: int = 0


class StreamNormalizer:
    """Feed :meth:`push` each datagram of the stream; it returns rtai-shaped datagrams."""

    def __init__(
        self,
        codec: str,
        payload_type: int,
        channels: int,
        block_frames: int,
        clock_hz: int,
        out_payload_type: int,
        rate_hz: int | None = None,
        out_ssrc: int = 1,
    ) -> None:
        """``block_frames`` at ``rate_hz`` (the decoder's rate; default ``clock_hz``)."""
        if codec not in ("pcm", "opus"):
            raise ValueError(f"codec {codec!r}: pcm or opus")
        self.codec = codec
        self.payload_type = payload_type
        self.channels = channels
        self.block_frames = block_frames
        self.clock_hz = clock_hz
        self.out_payload_type = out_payload_type
        self.out_ssrc = out_ssrc
        self._ts_step = block_frames * clock_hz // (rate_hz or clock_hz)
        self.ssrc: int | None = None
        self.counters = NormalizeCounters()
        self._block_bytes = block_frames * channels * 2
        self._buf = bytearray(self._block_bytes)
        self._origin_ts = 0
        self._block = 0  # index of the block being filled
        self._fill = 0  # frames written into it (its cursor)
        self._last_seq: int | None = None
        self._ext_seq = 0

    def push(self, data: bytes) -> list[bytes]:
        c = self.counters
        try:
            pkt = parse_rtp(data)
        except RtpError:
            c.malformed += 1
            return []
        if self.ssrc is None:
            if pkt.payload_type != self.payload_type:
                c.wrong_payload += 1
                return []
            self.ssrc = pkt.ssrc
        elif pkt.ssrc != self.ssrc:
            c.wrong_source += 1
            return []
        if pkt.payload_type != self.payload_type:
            c.wrong_payload += 1
            return []
        if self.codec == "opus":
            return self._opus(pkt)
        return self._pcm(pkt)

    # -- Opus: one packet, one block; timestamps follow the sequence numbers -----------

    def _opus(self, pkt: RtpPacket) -> list[bytes]:
        if not pkt.payload:
            self.counters.malformed += 1
            return []
        if self._last_seq is None:
            self._ext_seq = 0
        else:
            d = seq_diff(pkt.sequence_number, self._last_seq)
            if d <= 0:
                self.counters.late += 1
                return []  # late or duplicate: the jitter buffer would drop it too
            self._ext_seq += d
        self._last_seq = pkt.sequence_number
        self.counters.accepted += 1
        ts = (self._ext_seq * self._ts_step) & 0xFFFFFFFF
        return [self._out(pkt.sequence_number, ts, pkt.payload)]

    # -- L16: samples placed by timestamp, cut into blocks ----------------------------

    def _pcm(self, pkt: RtpPacket) -> list[bytes]:
        frame_bytes = self.channels * 2
        payload = pkt.payload
        if not payload or len(payload) % frame_bytes:
            self.counters.malformed += 1
            return []
        n = len(payload) // frame_bytes
        out: list[bytes] = []
        f = self.block_frames
        if self._last_seq is None:
            self._origin_ts = pkt.timestamp
        self._last_seq = pkt.sequence_number
        pos = ts_diff(pkt.timestamp, self._origin_ts)  # frames since the origin
        cursor = self._block * f + self._fill
        if abs(pos - cursor) > RESYNC_S * self.clock_hz:
            # A new timeline (a sender restart): continue ours where it is.
            self.counters.resyncs += 1
            self._origin_ts = (pkt.timestamp - cursor) & 0xFFFFFFFF
            pos = cursor
        if pos + n <= cursor:
            self.counters.late += 1
            return []
        self.counters.accepted += 1
        if pos < cursor:  # overlaps what we have: keep only the new part
            payload = payload[(cursor - pos) * frame_bytes :]
            n -= cursor - pos
            pos = cursor
        if pos >= (self._block + 1) * f:  # skips past the current block
            if self._fill:
                out.append(self._emit())
            self._block = pos // f
            self._fill = 0
        self._fill = pos - self._block * f  # a gap inside the block stays zero
        view = memoryview(payload)
        while n:
            take = min(n, f - self._fill)
            a = self._fill * frame_bytes
            self._buf[a : a + take * frame_bytes] = view[: take * frame_bytes]
            view = view[take * frame_bytes :]
            n -= take
            self._fill += take
            if self._fill == f:
                out.append(self._emit())
        return out

    def _emit(self) -> bytes:
        f = self.block_frames
        ts = (self._block * f) & 0xFFFFFFFF
        data = self._out(self._block & 0xFFFF, ts, bytes(self._buf))
        self._buf[:] = bytes(self._block_bytes)
        self._block += 1
        self._fill = 0
        return data

    def _out(self, seq: int, ts: int, payload: bytes) -> bytes:
        return RtpPacket(
            payload_type=self.out_payload_type,
            sequence_number=seq,
            timestamp=ts,
            ssrc=self.out_ssrc,
            payload=payload,
        ).serialize()


def pcm_block_from(packets: list[bytes], channels: int) -> np.ndarray:
    """Decode rtai-shaped L16 datagrams to int16 frames (tests and tools)."""
    parts = [np.frombuffer(parse_rtp(d).payload, dtype=">i2") for d in packets]
    if not parts:
        return np.zeros((0, channels), dtype=np.int16)
    return np.concatenate(parts).astype(np.int16).reshape(-1, channels)
