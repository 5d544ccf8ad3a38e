"""RTCP for one call, pure: what to report, and what the peer's reports tell us.

The clock is the caller's (rtai uses ``time.monotonic()`` seconds for both the SR
NTP field and arrival times: round-trip time only needs one clock per side).
"""

from __future__ import annotations

from dataclasses import dataclass

from rtai.rtp import rtcp
from rtai.rtp.receiver_stats import ReceiverStats, SenderStats


@dataclass
class PeerReport:
    """The latest figures the peer sent about our stream."""

    fraction_lost: float = 0.0  # 0..1
    cumulative_lost: int = 0
    jitter_ms: float = 0.0
    rtt_ms: float | None = None


class RtcpSession:
    def __init__(self, local_ssrc: int, remote_ssrc: int, rate_hz: int, cname: str) -> None:
        self.local_ssrc = local_ssrc
        self.remote_ssrc = remote_ssrc
        self.rate_hz = rate_hz
        self.cname = cname
        self.sender = SenderStats()
        self.receiver = ReceiverStats(rate_hz)
        self.peer = PeerReport()
        self.reports_received = 0
        self._last_sr_mid32: int | None = None
        self._last_sr_arrival_s: float | None = None

    def build(self, now_s: float, rtp_timestamp_now: int) -> bytes:
        """A compound SR + SDES (RFC 3550 6.1) to send now."""
        blocks = []
        if self.receiver.started:
            blocks.append(
                self.receiver.make_report_block(
                    self.remote_ssrc, self._last_sr_mid32, self._last_sr_arrival_s, now_s
                )
            )
        sr = self.sender.make_sender_report(
            self.local_ssrc, rtcp.ntp_from_seconds(now_s), rtp_timestamp_now, blocks
        )
        sdes = rtcp.Sdes([rtcp.SdesChunk(self.local_ssrc, self.cname)])
        return rtcp.build_compound([sr, sdes])

    def bye(self, reason: str) -> bytes:
        return rtcp.build_compound(
            [rtcp.ReceiverReport(self.local_ssrc), rtcp.Bye([self.local_ssrc], reason)]
        )

    def receive(self, packets: list, now_s: float) -> bool:
        """Take a parsed compound packet from the peer; return True if it said BYE."""
        said_bye = False
        for p in packets:
            if isinstance(p, rtcp.SenderReport):
                if p.ssrc == self.remote_ssrc:
                    self._last_sr_mid32 = rtcp.ntp_middle32(p.ntp_timestamp)
                    self._last_sr_arrival_s = now_s
                self._take_blocks(p.reports, now_s)
            elif isinstance(p, rtcp.ReceiverReport):
                self._take_blocks(p.reports, now_s)
            elif isinstance(p, rtcp.Bye) and self.remote_ssrc in p.ssrcs:
                said_bye = True
        return said_bye

    def _take_blocks(self, blocks: list, now_s: float) -> None:
        for b in blocks:
            if b.ssrc != self.local_ssrc:
                continue
            self.reports_received += 1
            self.peer.fraction_lost = b.fraction_lost / 256.0
            self.peer.cumulative_lost = b.cumulative_lost
            self.peer.jitter_ms = b.jitter * 1000.0 / self.rate_hz
            rtt = rtcp.rtt_from_report(
                rtcp.ntp_middle32(rtcp.ntp_from_seconds(now_s)), b.lsr, b.dlsr
            )
            if rtt is not None:
                self.peer.rtt_ms = rtt * 1000.0
