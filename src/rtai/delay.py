"""How late packets arrive, and how fast the sender's clock runs (pure estimators).

Both take, for each arriving packet, its RTP timestamp (the sender's sample clock)
and its arrival time (ours), and keep everything in seconds.

:class:`DriftEstimator` fits a line through the lower envelope of
``arrival - sender_time``: the earliest arrival in each one-second bucket is the
packet that met no queue, so jitter does not bias the slope; the robust
(Theil-Sen) slope over the last minute is the clock drift (positive: the sender's
clock runs slow against ours, so its packets arrive ever later).

:class:`DelayManager` measures each packet's *relative delay*: how much later it
arrived than the fastest recent packet would have, after taking the drift out.
The target playout delay is a high quantile of those delays over a sliding window
(``safety``: the 97th, 99th or 99.7th percentile for low, normal, high), plus half a block for the
playout granularity. A delay above the target raises it at once (a spike is
covered from the next packet on); the target comes down only as the window forgets,
at most ``shrink_ms_per_s``, so the buffer never yo-yos.
"""

from __future__ import annotations

import collections
import math

import numpy as np

from rtai.rtp.seq import ts_diff

SAFETY_QUANTILES = {"low": 0.97, "normal": 0.99, "high": 0.997}
RECOMPUTE_S = 0.25  # the quantile is recomputed at most this often
RING = 8192  # arrivals kept: two 10 s windows even at 2.67 ms packets
DRIFT_AGREEMENT = 0.8  # share of pairwise slopes that must agree before drift is used


class _SenderClock:
    """Unwraps 32-bit RTP timestamps into seconds of the sender's clock."""

    def __init__(self, clock_hz: int) -> None:
        self.clock_hz = clock_hz
        self._last_ts: int | None = None
        self._units = 0

    def seconds(self, rtp_ts: int) -> float:
        if self._last_ts is None:
            self._last_ts = rtp_ts
        else:
            step = ts_diff(rtp_ts, self._last_ts)
            if step > 0:
                self._units += step
                self._last_ts = rtp_ts
            else:
                return (self._units + step) / self.clock_hz
        return self._units / self.clock_hz


class DriftEstimator:
    """Sender-clock drift in ppm, from the lower envelope of arrival offsets."""

    def __init__(self, bucket_s: float = 1.0, window_buckets: int = 60, min_buckets: int = 10):
        self.bucket_s = bucket_s
        self.min_buckets = min_buckets
        self._buckets: collections.deque = collections.deque(maxlen=window_buckets)
        self._cur_bucket: int | None = None
        self._cur_min = math.inf
        self._cur_t = 0.0
        self.ppm = 0.0

    def update(self, sender_s: float, arrival_s: float) -> None:
        b = math.floor(sender_s / self.bucket_s)
        offset = arrival_s - sender_s
        if self._cur_bucket is None or b == self._cur_bucket:
            if offset < self._cur_min:
                self._cur_min, self._cur_t = offset, sender_s
            self._cur_bucket = b
            return
        if b < self._cur_bucket:
            return  # a reordered packet from a closed bucket
        self._buckets.append((self._cur_t, self._cur_min))
        self._cur_bucket, self._cur_min, self._cur_t = b, offset, sender_s
        if len(self._buckets) >= self.min_buckets:
            t = np.array([p[0] for p in self._buckets])
            y = np.array([p[1] for p in self._buckets])
            # Theil-Sen: the median of all pairwise slopes shrugs off a route change or
            # a stretch of congestion that a least-squares line would tilt towards.
            i, j = np.triu_indices(len(t), 1)
            dt = t[j] - t[i]
            ok = dt > 0.5 * self.bucket_s
            slopes = (y[j] - y[i])[ok] / dt[ok]
            ppm = float(np.median(slopes) * 1e6)
            # Trust it only when the pairwise slopes agree on the sign: a change in
            # the jitter's floor must not pass for drift.
            agree = float(np.mean(np.sign(slopes) == np.sign(ppm)))
            self.ppm = ppm if agree >= DRIFT_AGREEMENT else 0.0

    @property
    def ratio(self) -> float:
        """Our clock's rate over the sender's: >1 when the sender is slow."""
        return 1.0 + self.ppm * 1e-6


class DelayManager:
    def __init__(
        self,
        clock_hz: int,
        block_s: float,
        safety: str = "normal",
        min_ms: float = 0.0,
        max_ms: float = 1000.0,
        window_s: float = 10.0,
        shrink_ms_per_s: float = 10.0,
        start_ms: float = 20.0,
    ) -> None:
        if safety not in SAFETY_QUANTILES:
            raise ValueError(f"safety {safety!r}: use low, normal or high")
        self.quantile = SAFETY_QUANTILES[safety]
        self.block_s = block_s
        self.min_ms = min_ms
        self.max_ms = max_ms
        self.window_s = window_s
        self.shrink_ms_per_s = shrink_ms_per_s
        self.clock = _SenderClock(clock_hz)
        self.drift = DriftEstimator()
        # Arrival and sender times of the packets of the last two windows: offsets are
        # recomputed from these with the current drift, so a new drift estimate never
        # mixes with offsets computed under the old one.
        self._arrival_s = np.full(RING, -np.inf)
        self._sender_s = np.zeros(RING)
        self._n = 0
        self._ref_s = math.inf  # smallest drift-corrected offset (the fastest packet)
        self._ratio = 1.0  # the drift ratio _ref_s was computed with
        self._target_ms: float = min(max_ms, max(min_ms, start_ms))
        self._quantile_ms = 0.0
        self._recomputed_s: float | None = None
        self._last_update_s: float | None = None
        self.last_relative_ms = 0.0

    # -- arrivals --------------------------------------------------------------------

    def on_arrival(self, rtp_ts: int, arrival_s: float) -> None:
        sender_s = self.clock.seconds(rtp_ts)
        self.drift.update(sender_s, arrival_s)
        i = self._n % RING
        self._arrival_s[i] = arrival_s
        self._sender_s[i] = sender_s
        self._n += 1
        if self._recomputed_s is None or arrival_s - self._recomputed_s >= RECOMPUTE_S:
            self._recompute(arrival_s)
        offset = arrival_s - sender_s * self._ratio
        self._ref_s = min(self._ref_s, offset)
        rel_ms = (offset - self._ref_s) * 1000.0
        self.last_relative_ms = rel_ms
        if rel_ms > self._quantile_ms and self._n * (1 - self.quantile) < 2:
            self._quantile_ms = rel_ms  # too few packets yet for a quantile to hold it
        self._retarget(arrival_s)

    def _recompute(self, now_s: float) -> None:
        keep = self._arrival_s >= now_s - 2 * self.window_s
        a, t = self._arrival_s[keep], self._sender_s[keep]
        self._ratio = self.drift.ratio
        offsets = a - t * self._ratio
        self._ref_s = float(offsets.min())
        recent = offsets[a >= now_s - self.window_s] - self._ref_s
        self._quantile_ms = float(np.quantile(recent, self.quantile)) * 1000.0
        self._recomputed_s = now_s

    def _retarget(self, now_s: float) -> None:
        half_block_ms = self.block_s * 500.0
        want = min(self.max_ms, max(self.min_ms, self._quantile_ms + half_block_ms))
        if want >= self._target_ms:
            self._target_ms = want  # grow at once
        else:
            dt = 0.0 if self._last_update_s is None else max(0.0, now_s - self._last_update_s)
            self._target_ms = max(want, self._target_ms - self.shrink_ms_per_s * dt)
        self._last_update_s = now_s

    # -- results ---------------------------------------------------------------------

    @property
    def target_ms(self) -> float:
        return self._target_ms

    def playout_delay_ms(self, rtp_ts: int, playout_s: float) -> float:
        """How long after its earliest possible arrival a packet is taken for playout
        (ms): the quantity the adaptive playout holds at :attr:`target_ms`."""
        if not math.isfinite(self._ref_s):
            return 0.0
        earliest = self.clock.seconds(rtp_ts) * self._ratio + self._ref_s
        return (playout_s - earliest) * 1000.0
