"""Receiver-side RTP statistics for RTCP reports (RFC 3550 appendix A.1, A.3, A.8).

Pure: the caller passes every arrival time in; nothing here reads a clock.

:class:`ReceiverStats` follows one remote source:

- Sequence tracking (A.1). The 16-bit sequence number is extended with a count of
  wrap cycles. A packet fewer than ``max_dropout`` (3000) ahead of the highest seen
  advances it (a wrap adds a cycle); one at most ``max_misorder`` (100) behind is a
  late or duplicate packet and is counted but leaves the highest alone. Anything
  else is a *jump*: the packet is not counted and ``on_packet`` returns ``False``.
  If the very next packet follows the jumped one in sequence, the source has
  restarted or skipped ahead, so the tracker *resyncs*: both packets are counted,
  the extended sequence number continues forward from the old highest by the
  forward distance of the jump (so it never runs backwards), and the gap itself is
  not counted as loss. The loss and expected counts from before the jump are kept.
  There is no probation for a new source: we know the source from the handshake.
- Loss (A.3). ``expected`` is the span of extended sequence numbers seen,
  ``cumulative_lost`` is ``expected - received`` and goes negative when duplicates
  outnumber losses, as the RFC intends. The fraction lost covers the interval since
  the previous :meth:`ReceiverStats.make_report_block` call.
- Jitter (A.8). The running estimate ``J += (|D| - J) / 16`` where ``D`` is the
  change in transit time between consecutive arrivals, in RTP timestamp units.

:class:`SenderStats` holds the packet and octet counts a sender report carries.
"""

from __future__ import annotations

from rtai.rtp.rtcp import ReportBlock, SenderReport
from rtai.rtp.seq import SEQ_MOD, seq_add, seq_diff, ts_diff

MAX_DROPOUT = 3000
MAX_MISORDER = 100

_U32 = 0xFFFF_FFFF
_LOST_MIN = -(1 << 23)
_LOST_MAX = (1 << 23) - 1


def clamp_cumulative_lost(lost: int) -> int:
    """Clamp a loss count to the 24-bit signed range of the report block field."""
    return max(_LOST_MIN, min(_LOST_MAX, lost))


class ReceiverStats:
    """Loss and jitter statistics for one remote RTP source.

    ``clock_rate_hz`` is the RTP timestamp rate of the source's payload (48000 for
    Opus). Arrival times are seconds on any monotonic clock the caller likes, the
    same clock for every call on this object.
    """

    def __init__(
        self,
        clock_rate_hz: int,
        *,
        max_dropout: int = MAX_DROPOUT,
        max_misorder: int = MAX_MISORDER,
    ) -> None:
        if clock_rate_hz <= 0:
            raise ValueError(f"clock_rate_hz must be positive, got {clock_rate_hz}")
        if not (0 < max_dropout <= SEQ_MOD // 2 and 0 <= max_misorder <= SEQ_MOD // 2):
            raise ValueError("max_dropout must be in 1..32768 and max_misorder in 0..32768")
        self.clock_rate_hz = clock_rate_hz
        self._max_dropout = max_dropout
        self._max_misorder = max_misorder
        self._started = False
        self._max_seq = 0  # highest 16-bit sequence number seen
        self._cycles = 0  # wrap count times 2**16
        self._base_ext = 0  # extended sequence number that starts the current run
        self._expected_before = 0  # packets expected in runs before the last resync
        self._received = 0
        self._bad_seq: int | None = None  # the sequence number that would confirm a jump
        self._expected_prior = 0
        self._received_prior = 0
        self._jitter_ts = 0.0
        self._last_arrival_s: float | None = None
        self._last_rtp_ts = 0
        self.packets_discarded = 0
        """Packets not counted because they jumped too far from the expected sequence."""
        self.resyncs = 0
        """Times the tracker resynchronised after a confirmed sequence jump."""
        self.last_fraction_lost = 0
        """Fraction lost (1/256 units) put in the most recent report block."""

    def on_packet(self, seq: int, rtp_timestamp: int, arrival_s: float) -> bool:
        """Account one received RTP packet.

        ``seq`` is its 16-bit sequence number, ``rtp_timestamp`` its 32-bit RTP
        timestamp, and ``arrival_s`` the local receive time in seconds. Returns
        ``False`` when the packet was too far out of sequence to count (a possible
        jump awaiting confirmation), ``True`` otherwise.
        """
        seq &= 0xFFFF
        rtp_timestamp &= _U32
        if not self._started:
            self._started = True
            self._max_seq = seq
            self._cycles = 0
            self._base_ext = seq
            self._received = 1
            self._update_jitter(rtp_timestamp, arrival_s)
            return True

        delta = seq_diff(seq, self._max_seq)
        if 0 <= delta < self._max_dropout:
            if seq < self._max_seq:
                self._cycles += SEQ_MOD
            self._max_seq = seq
        elif delta < -self._max_misorder or delta >= self._max_dropout:
            if seq != self._bad_seq:
                self._bad_seq = seq_add(seq, 1)
                self.packets_discarded += 1
                self._last_arrival_s = None  # do not measure jitter across the jump
                return False
            self._resync(seq)
        # else: a late or duplicate packet within max_misorder; counted below.
        self._bad_seq = None
        self._received += 1
        self._update_jitter(rtp_timestamp, arrival_s)
        return True

    def _resync(self, seq: int) -> None:
        # The previous packet (seq - 1) started the jump and was discarded; this one
        # confirms it. Close the old run, then start a new run at seq - 1 whose
        # extended numbers continue forward from the old highest.
        old_ext = self.extended_highest_seq
        self._expected_before += old_ext - self._base_ext + 1
        new_ext = old_ext + (seq - self._max_seq) % SEQ_MOD
        self._cycles = new_ext - seq
        self._max_seq = seq
        self._base_ext = new_ext - 1
        self._received += 1  # the discarded packet that started the jump
        self.packets_discarded -= 1
        self.resyncs += 1

    def _update_jitter(self, rtp_timestamp: int, arrival_s: float) -> None:
        if self._last_arrival_s is not None:
            arrival_delta_ts = (arrival_s - self._last_arrival_s) * self.clock_rate_hz
            d = arrival_delta_ts - ts_diff(rtp_timestamp, self._last_rtp_ts)
            self._jitter_ts += (abs(d) - self._jitter_ts) / 16.0
        self._last_arrival_s = arrival_s
        self._last_rtp_ts = rtp_timestamp

    @property
    def started(self) -> bool:
        """True once any packet has been seen."""
        return self._started

    @property
    def extended_highest_seq(self) -> int:
        """Highest sequence number received, extended with wrap cycles."""
        return self._cycles + self._max_seq

    @property
    def base_seq(self) -> int:
        """Extended sequence number of the first packet (of the current run after a resync)."""
        return self._base_ext

    @property
    def packets_received(self) -> int:
        """Packets counted, duplicates included (RFC 3550 A.3)."""
        return self._received

    @property
    def packets_expected(self) -> int:
        """Packets the sequence numbers say were sent, over every run since the start."""
        if not self._started:
            return 0
        return self._expected_before + self.extended_highest_seq - self._base_ext + 1

    @property
    def cumulative_lost(self) -> int:
        """Expected minus received; negative when duplicates outnumber losses. Unclamped."""
        return self.packets_expected - self._received

    @property
    def jitter_ts_units(self) -> float:
        """Interarrival jitter estimate in RTP timestamp units (RFC 3550 A.8)."""
        return self._jitter_ts

    @property
    def jitter_ms(self) -> float:
        """Interarrival jitter estimate in milliseconds."""
        return self._jitter_ts * 1000.0 / self.clock_rate_hz

    def make_report_block(
        self,
        ssrc: int,
        last_sr_ntp_middle32: int | None,
        last_sr_arrival_s: float | None,
        now_s: float,
    ) -> ReportBlock:
        """Build the report block about source ``ssrc`` and start a new loss interval.

        ``last_sr_ntp_middle32`` is :func:`rtai.rtp.rtcp.ntp_middle32` of the last SR
        received from that source and ``last_sr_arrival_s`` when it arrived, on the
        same clock as ``now_s``; pass ``None`` (or 0) for both before any SR, and LSR
        and DLSR are sent as 0. Calling this closes the interval that the fraction
        lost covers (RFC 3550 A.3), so call it once per report sent. Raises
        ``ValueError`` before the first packet: RFC 3550 reports only on sources
        heard from.
        """
        if not self._started:
            raise ValueError("no RTP packets received from this source yet; nothing to report")
        expected = self.packets_expected
        expected_interval = expected - self._expected_prior
        received_interval = self._received - self._received_prior
        self._expected_prior = expected
        self._received_prior = self._received
        lost_interval = expected_interval - received_interval
        if expected_interval <= 0 or lost_interval <= 0:
            fraction = 0
        else:
            fraction = min(255, (lost_interval << 8) // expected_interval)
        self.last_fraction_lost = fraction

        lsr = (last_sr_ntp_middle32 or 0) & _U32
        if lsr == 0 or last_sr_arrival_s is None:
            lsr = dlsr = 0
        else:
            dlsr = max(0, min(_U32, round((now_s - last_sr_arrival_s) * 65536)))
        return ReportBlock(
            ssrc=ssrc,
            fraction_lost=fraction,
            cumulative_lost=clamp_cumulative_lost(self.cumulative_lost),
            highest_seq=self.extended_highest_seq & _U32,
            jitter=min(_U32, int(self._jitter_ts)),
            lsr=lsr,
            dlsr=dlsr,
        )


class SenderStats:
    """Counts for our own sender reports: RTP packets and payload octets sent (mod 2**32)."""

    def __init__(self) -> None:
        self.packet_count = 0
        self.octet_count = 0

    def on_packet_sent(self, payload_octets: int) -> None:
        """Account one RTP packet sent; ``payload_octets`` excludes header and padding."""
        self.packet_count = (self.packet_count + 1) & _U32
        self.octet_count = (self.octet_count + payload_octets) & _U32

    def make_sender_report(
        self,
        ssrc: int,
        ntp_timestamp: int,
        rtp_timestamp: int,
        reports: list[ReportBlock] | None = None,
    ) -> SenderReport:
        """An SR with the current counts; the two timestamps name the same instant."""
        return SenderReport(
            ssrc=ssrc,
            ntp_timestamp=ntp_timestamp,
            rtp_timestamp=rtp_timestamp & _U32,
            packet_count=self.packet_count,
            octet_count=self.octet_count,
            reports=list(reports or []),
        )
