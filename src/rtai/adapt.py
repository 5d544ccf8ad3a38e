"""Adapting the sender to the path, from the receiver's RTCP reports (pure).

Each receiver report tells the sender the fraction of its packets lost since the
previous report, the interarrival jitter and (through LSR/DLSR) the round-trip
time. :class:`PathAdapter` turns that into encoder settings within the user's
limits:

* Loss protection follows loss quickly and lets go slowly: a loss estimate takes a
  rise at once and a fall by a fifth per report; in-band FEC turns on above 1 % and
  off again below 0.5 % (``fec="auto"``); where FEC does not exist (PCM, Opus blocks
  under 10 ms) redundancy (RFC 2198) carries 1, 2 or 3 earlier blocks from 1, 5 and
  15 %. The Opus packet-loss hint is a plain running average of the loss (a hint
  above the real loss costs quality: the quality benchmark measured it), and with
  FEC on and 5 % loss or more the coded band is capped at wideband (8 kHz), so the
  bits go to speech and its FEC copy.
* Congestion lowers the bitrate: when loss is high *and* the round-trip time has
  grown well above the smallest seen (queues filling), or the average loss is
  severe, the bitrate drops by 15 % per report down to ``min_bitrate_bps``. Random loss on an
  uncongested path (RTT flat) does not cut the bitrate: it gets FEC instead.
* Recovery is slow: after 5 s with no congestion, the bitrate climbs 5 % per report
  back toward ``max_bitrate_bps``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from rtai.codecs import EncoderSettings

FEC_ON_PCT = 1.0
FEC_OFF_PCT = 0.5
RED_STEPS_PCT = (1.0, 5.0, 15.0)
CONGESTED_LOSS_PCT = 5.0
SEVERE_LOSS_PCT = 25.0
RTT_GROWTH_MS = 30.0
DECREASE = 0.85
INCREASE = 1.05
RECOVER_AFTER_S = 5.0
MAX_LOSS_HINT = 40
AVERAGE_GAIN = 0.3
WIDEBAND_LOSS_PCT = 5.0
BANDS = ("nb", "mb", "wb", "swb", "fb")


@dataclass(frozen=True)
class Limits:
    max_bitrate_bps: int
    min_bitrate_bps: int
    fec: str = "auto"  # on | off | auto
    fec_available: bool = True  # False for PCM and Opus blocks under 10 ms
    max_redundancy: int = 3
    redundancy: int | None = None  # fixed by the user; None = adapt
    adaptive: bool = True
    max_bandwidth: str = "fb"


@dataclass(frozen=True)
class Decision:
    settings: EncoderSettings
    redundancy: int
    loss_estimate_pct: float
    congested: bool


class PathAdapter:
    def __init__(self, base: EncoderSettings, limits: Limits) -> None:
        self.limits = limits
        self._loss_pct = 0.0  # rises at once, falls slowly: drives protection on/off
        self._loss_avg_pct = 0.0  # a plain average: the hint and the severe-loss rule
        self._min_rtt_ms: float | None = None
        self._last_congestion_s: float | None = None
        self._bitrate = float(min(base.bitrate_bps, limits.max_bitrate_bps))
        limits = replace(limits, max_bandwidth=base.max_bandwidth)
        self.limits = limits
        fec = limits.fec == "on" and limits.fec_available
        self.decision = Decision(
            settings=replace(base, bitrate_bps=int(self._bitrate), fec=fec),
            redundancy=limits.redundancy or 0,
            loss_estimate_pct=0.0,
            congested=False,
        )
        self.version = 0  # bumped whenever the decision changes

    def on_report(
        self, now_s: float, fraction_lost: float, jitter_ms: float, rtt_ms: float | None
    ) -> Decision:
        """Take one receiver report about our stream; return the (new) decision."""
        lim = self.limits
        loss = max(0.0, min(100.0, fraction_lost * 100.0))
        if loss >= self._loss_pct:
            self._loss_pct = loss
        else:
            self._loss_pct += (loss - self._loss_pct) * 0.2
        self._loss_avg_pct += (loss - self._loss_avg_pct) * AVERAGE_GAIN
        if not lim.adaptive:
            return self.decision
        congested = False
        if rtt_ms is not None:
            self._min_rtt_ms = rtt_ms if self._min_rtt_ms is None else min(self._min_rtt_ms, rtt_ms)
            rtt_grew = rtt_ms > self._min_rtt_ms + RTT_GROWTH_MS
            congested = (loss >= CONGESTED_LOSS_PCT and rtt_grew) or (
                self._loss_avg_pct >= SEVERE_LOSS_PCT
            )
        if congested:
            self._last_congestion_s = now_s
            self._bitrate = max(lim.min_bitrate_bps, self._bitrate * DECREASE)
        elif self._last_congestion_s is None or now_s - self._last_congestion_s >= RECOVER_AFTER_S:
            self._bitrate = min(lim.max_bitrate_bps, self._bitrate * INCREASE)
        prev = self.decision.settings
        if lim.fec == "auto" and lim.fec_available:
            fec = self._loss_pct > FEC_ON_PCT or (prev.fec and self._loss_pct > FEC_OFF_PCT)
        else:
            fec = lim.fec == "on" and lim.fec_available
        hint = min(MAX_LOSS_HINT, round(self._loss_avg_pct))
        band = lim.max_bandwidth
        if (
            fec
            and self._loss_avg_pct >= WIDEBAND_LOSS_PCT
            and BANDS.index(band) > BANDS.index("wb")
        ):
            band = "wb"  # spend the bits on speech and its FEC copy, not on air above 8 kHz
        redundancy = lim.redundancy
        if redundancy is None:
            redundancy = 0
            if not lim.fec_available:
                redundancy = sum(self._loss_pct >= step for step in RED_STEPS_PCT)
            redundancy = min(redundancy, lim.max_redundancy)
        decision = Decision(
            settings=replace(
                prev, bitrate_bps=int(self._bitrate), fec=fec, loss_pct=hint, max_bandwidth=band
            ),
            redundancy=redundancy,
            loss_estimate_pct=round(self._loss_pct, 2),
            congested=congested,
        )
        if (decision.settings, decision.redundancy) != (prev, self.decision.redundancy):
            self.version += 1
        self.decision = decision
        return decision
