"""How late packets arrive, and how fast the sender's clock runs (pure estimators).

Both take, for each arriving packet, its RTP timestamp (the sender's sample clock)
and its arrival time (ours), and keep everything in seconds.

:class:`DriftEstimator` fits a line through the lower envelope of
``arrival - sender_time``: the earliest arrival in each one-second bucket is the
packet that met no queue, so jitter does not bias the slope; the robust
(Theil-Sen) slope over the last minute is the clock drift (positive: the sender's
clock runs slow against ours, so its packets arrive ever later).

:class:`DelayManager` measures each packet's *relative delay*: how much later it
arrived than the fastest recent packet would have, after taking the drift out, and
derives the target playout delay from them in the spirit of Jamulus's parallel
simulated buffers: every candidate delay (0, 1, 2 ... ms) runs a model of rtai's own
adaptive buffer on the same arrivals. A packet later than a candidate's current delay
conceals the blocks it missed and is then played, so that candidate's delay rises to
the packet's and recovers at ``RECOVER_RATE`` (as the time-scaling does). Counting
concealed *blocks* charges a spike once, however many packets queued behind it (they
arrive in a burst, on time for the raised delay), where a quantile of the packets'
delays would count every one of them.

Early stretching: the playout stretches the audio it holds from the moment the next
packet is overdue (:meth:`DelayManager.overdue_ms`: later than the short-term target
plus ``OVERDUE_BLOCKS``), as in a FIFO network that announces a spike a whole playout
delay before the packet is due. It measures what that gains (frames added per frame of
audio stretched) and sets :attr:`DelayManager.stretch_gain`; a candidate holding
``d`` ms then conceals only what a spike exceeds ``d + gain * (d - overdue point)`` by,
so the target comes down by what the stretching covers.

* Long term: each candidate's concealed blocks over the last ``LONG_BUCKETS`` seconds;
  the target is the smallest candidate that kept them within the safety budget
  (``SAFETY_BUDGETS``: 2 %, 0.7 %, 0.2 % of the packets for low, normal, high; on
  heavy-tailed spikes the concealment reached is above the budget, as the window learns
  of the largest spikes only when they come).
* Short term: each candidate's late *events* with a memory of about 100 packets; more
  than ``SHORT_BUDGET`` of them means the delay has stepped up (a route change), and the
  target follows at once. A lone spike is one event and does not trigger it; the
  long-term candidates are held no lower than a stricter short-term target
  (``SHORT_HOLD``), so a step is charged once and not for every packet that was late
  while it lasted.

The target is the larger of the two plus ``TAKE_MARGIN_MS``. It grows at once and
comes down at most ``shrink_ms_per_s``; a rough patch leaves the window after
``LONG_BUCKETS`` seconds, so the buffer shrinks again after calm.
"""

from __future__ import annotations

import collections
import math

import numpy as np

from rtai.rtp.seq import ts_diff

SAFETY_BUDGETS = {"low": 0.02, "normal": 0.007, "high": 0.002}  # concealed blocks per packet
TAKE_MARGIN_MS = 1.5  # added to the chosen candidate (the playout phase is not exact)
SHORT_BUDGET = 0.03  # the same over the last second or so: reacts to a step at once
SHORT_HOLD = 0.015  # the same, stricter: the floor the long-term candidates are held at
OVERDUE_BLOCKS = 1.0  # a packet this many blocks past its usual arrival is overdue
GAP_BLOCKS = 1.5  # a step in the sender's timestamps above this many blocks is a pause
LONG_BUCKETS = 30  # seconds of history for the long-term statistics
FORGET_SHORT = 1.0 - 1.0 / 100.0  # per packet
RECOVER_RATE = 0.2  # how fast a simulated buffer sheds delay after a late packet (ms/ms)
CANDIDATE_STEP_MS = 1.0
RECOMPUTE_S = 0.25  # the reference (fastest packet) is recomputed at most this often
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
        shrink_ms_per_s: float = 40.0,
        start_ms: float = 20.0,
    ) -> None:
        if safety not in SAFETY_BUDGETS:
            raise ValueError(f"safety {safety!r}: use low, normal or high")
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
        # The parallel simulated buffers: one per candidate take delay (ms).
        self._cand_ms = np.arange(0.0, max(max_ms, 1.0) + CANDIDATE_STEP_MS, CANDIDATE_STEP_MS)
        # Each one's delay now (raised by a late packet, then recovering).
        self._held_short = self._cand_ms.copy()
        self._held_long = self._cand_ms.copy()
        self._short_ms = 0.0
        self._short_hold_ms = 0.0
        # Long term: concealed blocks per candidate in one-second buckets over the window
        # (a ring), and their running sum; so a rough patch is forgotten in bounded time.
        self._buckets = np.zeros((LONG_BUCKETS, self._cand_ms.size))
        self._bucket_counts = np.zeros(LONG_BUCKETS)
        self._bucket: int | None = None
        self._cost_long = np.zeros_like(self._cand_ms)
        self._cost_short = np.zeros_like(self._cand_ms)
        self._count_long = 0.0
        self._count_short = 0.0
        self._budget = SAFETY_BUDGETS[safety]
        self._last_sender_s: float | None = None
        self._recomputed_s: float | None = None
        self._last_update_s: float | None = None
        self.last_relative_ms = 0.0
        self.margin_ms = TAKE_MARGIN_MS
        # Frames the playout adds by stretching per frame played while a packet is
        # overdue (measured there, see PlayoutEngine); the candidates assume it.
        self.stretch_gain = 0.0
        # Arrivals that followed a pause in the sender's timestamps (DTX, lost packets):
        # the playout measures its stretch gain only over overdue episodes with none, as
        # an episode that ends in one was the sender's silence, not a spike.
        self.sending_gaps = 0

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
        self._simulate(rel_ms, sender_s)
        self._retarget(arrival_s)

    def _simulate(self, rel_ms: float, sender_s: float) -> None:
        """Play this arrival into every candidate buffer and count what each conceals."""
        step_ms = 0.0
        if self._last_sender_s is not None:
            step_ms = max(0.0, (sender_s - self._last_sender_s) * 1000.0)
            if step_ms > GAP_BLOCKS * self.block_s * 1000.0:
                self.sending_gaps += 1
        if self._last_sender_s is None or sender_s > self._last_sender_s:
            self._last_sender_s = sender_s
        block_ms = self.block_s * 1000.0
        recover_ms = RECOVER_RATE * step_ms
        # Short term: late events of each candidate on its own. A step in the delay makes
        # every candidate below it late again and again; a lone spike only once.
        held = np.maximum(self._cand_ms, self._held_short - recover_ms)
        self._cost_short *= FORGET_SHORT
        self._cost_short += rel_ms > held
        self._count_short = self._count_short * FORGET_SHORT + 1.0
        self._held_short = np.maximum(held, rel_ms)
        # Long term: concealed blocks of each candidate, which is held no lower than the
        # short-term target as the real buffer is (so a step is charged once; at the
        # stricter SHORT_HOLD, so the jitter inside a step is not charged block by block).
        held = np.maximum(self._cand_ms, self._held_long - recover_ms)
        held = np.maximum(held, self._short_hold_ms)
        # A late packet conceals the blocks it missed, then plays: that buffer's delay
        # is now the packet's (the packets queued behind it are on time).
        # The playout stretches the audio in hand from the moment a packet is overdue
        # (see overdue_ms), at the gain it measured: a candidate holding ``held`` ms
        # reaches that much further before it has to conceal.
        overdue_ms = self._short_ms + OVERDUE_BLOCKS * block_ms
        reach = held + self.stretch_gain * np.maximum(0.0, held - overdue_ms)
        late_blocks = np.ceil(np.maximum(0.0, rel_ms - reach) / block_ms - 1e-9)
        self._held_long = np.maximum(held, rel_ms)
        bucket = math.floor(sender_s)
        if self._bucket is None:
            self._bucket = bucket
        while self._bucket < bucket:  # a new second: the oldest one leaves the window
            self._bucket += 1
            i = self._bucket % LONG_BUCKETS
            self._cost_long -= self._buckets[i]
            self._count_long -= self._bucket_counts[i]
            self._buckets[i] = 0.0
            self._bucket_counts[i] = 0.0
            if self._bucket + LONG_BUCKETS <= bucket:  # a long gap: start over
                self._buckets[:] = 0.0
                self._bucket_counts[:] = 0.0
                self._cost_long[:] = 0.0
                self._count_long = 0.0
                self._bucket = bucket
        i = self._bucket % LONG_BUCKETS
        self._buckets[i] += late_blocks
        self._bucket_counts[i] += 1.0
        self._cost_long += late_blocks
        self._count_long += 1.0
        self._short_ms = self._lowest_within(self._cost_short, self._count_short, SHORT_BUDGET)
        self._short_hold_ms = self._lowest_within(self._cost_short, self._count_short, SHORT_HOLD)

    def _lowest_within(self, cost: np.ndarray, count: float, budget: float) -> float:
        ok = cost <= budget * count
        return float(self._cand_ms[int(np.argmax(ok))]) if ok.any() else float(self._cand_ms[-1])

    def _recompute(self, now_s: float) -> None:
        keep = self._arrival_s >= now_s - 2 * self.window_s
        a, t = self._arrival_s[keep], self._sender_s[keep]
        self._ratio = self.drift.ratio
        offsets = a - t * self._ratio
        self._ref_s = float(offsets.min())
        self._recomputed_s = now_s

    def _retarget(self, now_s: float) -> None:
        long_ms = self._lowest_within(self._cost_long, self._count_long, self._budget)
        need = max(long_ms, self._short_ms)
        want = min(self.max_ms, max(self.min_ms, need + self.margin_ms))
        if want >= self._target_ms:
            self._target_ms = want  # grow at once
        else:
            dt = 0.0 if self._last_update_s is None else max(0.0, now_s - self._last_update_s)
            self._target_ms = max(want, self._target_ms - self.shrink_ms_per_s * dt)
        self._last_update_s = now_s

    # -- results ---------------------------------------------------------------------

    def overdue_ms(self, now_s: float) -> float:
        """How far past its usual arrival the packet after the newest one is (ms; <= 0
        while it is not yet overdue). The usual arrival is its earliest possible one plus
        the short-term target, which the recent packets kept to, plus ``OVERDUE_BLOCKS``
        blocks (so the tail of ordinary jitter does not count). In a FIFO network an
        overdue packet announces a spike a whole playout delay before it is due."""
        if self._last_sender_s is None or not math.isfinite(self._ref_s):
            return 0.0
        due = (self._last_sender_s + self.block_s) * self._ratio + self._ref_s
        return (now_s - due) * 1000.0 - self._short_ms - OVERDUE_BLOCKS * self.block_s * 1000.0

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
