"""Pure network impairment model: loss, delay, jitter, reordering, duplication, rate limit.

This module has no sockets, threads or clock. The caller offers each packet with the time
it arrived (``push(now_s, item, size_bytes)``) and later asks which packets are due
(``pop_due(now_s)``); every time is a float in seconds on whatever clock the caller uses
(``time.monotonic()`` in the relay, a simulated clock in tests). The same seed and the
same sequence of calls give the same output, bit for bit.

Pipeline, applied to each offered packet in this order::

    loss -> rate queue -> delay + jitter -> FIFO clamp -> reorder hold -> duplicate

Loss
    ``burst_packets <= 1``: independent (Bernoulli) loss, each packet lost with
    probability ``loss_pct / 100``.

    ``burst_packets > 1``: Gilbert-Elliott two-state Markov chain. In the Good state no
    packet is lost; in the Bad state every packet is lost. With ``L = loss_pct / 100`` and
    ``B = burst_packets``::

        r = p(bad -> good)  = 1 / B              mean Bad sojourn = 1 / r = B packets
        p = p(good -> bad)  = r * L / (1 - L)     = L / (B * (1 - L))

    because the stationary probability of Bad is ``p / (p + r)``, and setting it to
    ``L`` gives ``p = r * L / (1 - L)``. ``p`` is a probability, so ``p <= 1``, which is
    ``L <= B / (B + 1)``: a 50 % loss needs bursts of at least 1 packet on average, a
    90 % loss at least 9. :meth:`ImpairmentConfig.validate` rejects settings beyond that.
    The chain starts in its stationary distribution, so the loss rate is unbiased from
    the first packet. Loss is applied before the rate queue: lost packets use no link
    time.

Rate queue (``rate_kbps > 0``)
    A single serialization link: a packet of ``size_bytes`` occupies
    ``size_bytes * 8 / (rate_kbps * 1000)`` seconds of link time, queued behind earlier
    packets, and leaves the link when its serialization ends. When the backlog already
    waiting (in link seconds) plus the new packet would exceed ``queue_ms``, the packet is
    tail-dropped (``dropped_queue``). A packet arriving at an idle link is always
    accepted, however large. ``size_bytes`` is whatever the caller counts; the relay
    counts UDP payload bytes.

Delay and jitter
    Each packet gets ``delay_ms`` plus a random extra ``|N(0, jitter_ms)|`` (half-normal:
    mean ``jitter_ms * sqrt(2 / pi)``, about 0.8 * jitter_ms). ``delay_ms`` is therefore a
    strict lower bound on the added delay. Jitter never reorders: a packet's release time
    is ``max(computed, previous release)`` (the FIFO clamp), so a packet may be delayed by
    the one before it, exactly as on a real FIFO path.

Reordering
    With probability ``reorder_pct / 100`` a packet is held back after its normal release
    time is computed, and released immediately after the next packet that is not itself
    held (at ``max(own release, that packet's release)``, ordered after it). So a packet
    counted in ``reordered`` has truly arrived after at least one later packet. If no
    later packet survives within ``reorder_timeout_ms`` past its normal release time, the
    held packet is released then and is not counted as reordered (no packet overtook it).
    Held packets do not move the FIFO clamp.

Duplication
    With probability ``duplicate_pct / 100`` a second copy of a surviving packet is released
    at the same instant, right after the original (as if duplicated after the bottleneck).

Every impairment draws from its own ``random.Random`` stream derived from ``seed``, and
draws once per offered packet whether or not the packet survives earlier stages. So with
one seed, packet n gets the same jitter draw whatever the loss setting is (common random
numbers), which keeps A/B comparisons fair.

Counters (:class:`ImpairmentCounters`) satisfy, at every moment::

    offered + duplicated == passed + dropped_loss + dropped_queue + dropped_overflow + pending

Memory is bounded: at most ``max_pending_packets`` datagrams and ``max_pending_bytes``
bytes wait inside one model; beyond that a packet is dropped (``dropped_overflow``).
"""

from __future__ import annotations

import heapq
import math
import random
from dataclasses import dataclass, fields, replace
from typing import Generic, NamedTuple, TypeVar

T = TypeVar("T")

DEFAULT_QUEUE_MS = 200.0
DEFAULT_REORDER_TIMEOUT_MS = 100.0
DEFAULT_MAX_PENDING_PACKETS = 4096
DEFAULT_MAX_PENDING_BYTES = 8 * 1024 * 1024


class ConfigError(ValueError):
    """An out-of-range impairment setting; ``field`` names the offending config field."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True, slots=True)
class ImpairmentConfig:
    """Impairments applied to one direction of a path. All defaults mean "no impairment".

    Attributes:
        delay_ms: fixed one-way delay added to every packet, ms, >= 0.
        jitter_ms: scale of the extra half-normal delay ``|N(0, jitter_ms)|``, ms, >= 0.
        loss_pct: long-run fraction of packets lost, percent, 0..100.
        burst_packets: mean loss-burst length in packets; <= 1 gives independent loss,
            > 1 gives Gilbert-Elliott loss with this mean Bad-state sojourn.
        reorder_pct: percentage of packets held back behind the next packet, 0..100.
        duplicate_pct: percentage of surviving packets delivered twice, 0..100.
        rate_kbps: link rate in kbit/s (1000 bit/s); 0 means unlimited.
        seed: non-negative integer seeding every random stream of this model.
        queue_ms: rate-queue bound in link-seconds (ms); only used when rate_kbps > 0.
        reorder_timeout_ms: longest a held packet waits for a later packet to overtake it.
    """

    delay_ms: float = 0.0
    jitter_ms: float = 0.0
    loss_pct: float = 0.0
    burst_packets: float = 0.0
    reorder_pct: float = 0.0
    duplicate_pct: float = 0.0
    rate_kbps: float = 0.0
    seed: int = 0
    queue_ms: float = DEFAULT_QUEUE_MS
    reorder_timeout_ms: float = DEFAULT_REORDER_TIMEOUT_MS

    @property
    def bursty(self) -> bool:
        """True when loss follows the Gilbert-Elliott model (``burst_packets > 1``)."""
        return self.burst_packets > 1.0

    def validate(self) -> None:
        """Raise :class:`ConfigError` (a ValueError) with a one-line message if out of range."""
        for name in ("delay_ms", "jitter_ms", "burst_packets", "rate_kbps"):
            _check_number(name, getattr(self, name), low=0.0)
        for name in ("loss_pct", "reorder_pct", "duplicate_pct"):
            _check_number(name, getattr(self, name), low=0.0, high=100.0)
        for name in ("queue_ms", "reorder_timeout_ms"):
            value = _check_number(name, getattr(self, name), low=0.0)
            if value <= 0.0:
                raise ConfigError(name, f"{name} must be > 0, got {value:g}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ConfigError("seed", f"seed must be a non-negative integer, got {self.seed!r}")
        if self.bursty:
            max_loss_pct = 100.0 * self.burst_packets / (self.burst_packets + 1.0)
            if self.loss_pct > max_loss_pct:
                raise ConfigError(
                    "loss_pct",
                    f"loss_pct {self.loss_pct:g} is too high for burst_packets "
                    f"{self.burst_packets:g}: bursty loss allows at most {max_loss_pct:.4g} "
                    "(100*B/(B+1)); raise the burst length or lower the loss",
                )

    def reverse_direction(self) -> ImpairmentConfig:
        """The same impairments for the other direction, with an independent seed (seed+1)."""
        return replace(self, seed=self.seed + 1)

    def gilbert_elliott(self) -> tuple[float, float]:
        """Transition probabilities ``(p_good_to_bad, p_bad_to_good)`` of the bursty model."""
        if not self.bursty:
            raise ValueError("gilbert_elliott() needs burst_packets > 1")
        loss = self.loss_pct / 100.0
        r = 1.0 / self.burst_packets
        p = 0.0 if loss <= 0.0 else min(1.0, r * loss / (1.0 - loss))
        return p, r


def _check_number(name: str, value: object, *, low: float, high: float | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(name, f"{name} must be a number, got {value!r}")
    number = float(value)
    if not math.isfinite(number) or number < low or (high is not None and number > high):
        span = f"between {low:g} and {high:g}" if high is not None else f">= {low:g}"
        raise ConfigError(name, f"{name} must be a finite number {span}, got {value!r}")
    return number


@dataclass(slots=True)
class ImpairmentCounters:
    """What one model did, in packets (datagrams). See the module docstring's invariant."""

    offered: int = 0
    passed: int = 0
    dropped_loss: int = 0
    dropped_queue: int = 0
    dropped_overflow: int = 0
    duplicated: int = 0
    reordered: int = 0

    def copy(self) -> ImpairmentCounters:
        return replace(self)

    def as_dict(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


class Released(NamedTuple, Generic[T]):
    """One datagram leaving the model: when it is due (s, caller's clock) and what it is."""

    release_s: float
    item: T


@dataclass(slots=True)
class _Held(Generic[T]):
    release_s: float
    deadline_s: float
    item: T
    size_bytes: int
    copies: int


class Impairment(Generic[T]):
    """One direction of an impaired path, as a sans-I/O queue of opaque items.

    ``push()`` offers a packet at time ``now_s``; ``pop_due(now_s)`` returns the packets
    whose release time has come, in release order; ``next_release_s()`` tells the caller
    when to wake up next. Items are never inspected, so they can be bytes, packet objects
    or just indices in a test.
    """

    def __init__(
        self,
        config: ImpairmentConfig,
        *,
        max_pending_packets: int = DEFAULT_MAX_PENDING_PACKETS,
        max_pending_bytes: int = DEFAULT_MAX_PENDING_BYTES,
    ) -> None:
        config.validate()
        if max_pending_packets < 1 or max_pending_bytes < 1:
            raise ValueError("max_pending_packets and max_pending_bytes must be >= 1")
        self.config = config
        self.counters = ImpairmentCounters()
        self._max_pending_packets = max_pending_packets
        self._max_pending_bytes = max_pending_bytes

        def stream(name: str) -> random.Random:
            return random.Random(f"rtai.netsim:{config.seed}:{name}")

        self._rng_loss = stream("loss")
        self._rng_jitter = stream("jitter")
        self._rng_reorder = stream("reorder")
        self._rng_duplicate = stream("duplicate")

        self._loss_p = config.loss_pct / 100.0
        self._bad = False
        if config.bursty:
            self._ge_p, self._ge_r = config.gilbert_elliott()
            self._bad = self._rng_loss.random() < self._loss_p  # stationary start
        self._delay_s = config.delay_ms / 1000.0
        self._jitter_s = config.jitter_ms / 1000.0
        self._reorder_p = config.reorder_pct / 100.0
        self._duplicate_p = config.duplicate_pct / 100.0
        self._rate_bps = config.rate_kbps * 1000.0
        self._queue_s = config.queue_ms / 1000.0
        self._reorder_timeout_s = config.reorder_timeout_ms / 1000.0

        self._link_free_s = -math.inf
        self._last_release_s = -math.inf
        self._order = 0
        self._heap: list[tuple[float, int, int, T]] = []  # (release_s, order, size, item)
        self._held: list[_Held[T]] = []
        self._pending_packets = 0
        self._pending_bytes = 0

    # -- queries -------------------------------------------------------------------------

    @property
    def pending(self) -> int:
        """Datagrams accepted but not yet returned by ``pop_due`` (duplicates included)."""
        return self._pending_packets

    @property
    def pending_bytes(self) -> int:
        return self._pending_bytes

    def next_release_s(self) -> float | None:
        """Earliest time something may become due, or None when nothing is pending."""
        times = [self._heap[0][0]] if self._heap else []
        if self._held:
            times.append(min(h.deadline_s for h in self._held))
        return min(times) if times else None

    # -- input ---------------------------------------------------------------------------

    def push(self, now_s: float, item: T, size_bytes: int) -> int:
        """Offer one packet arriving at ``now_s``; return how many copies will be released.

        0 means dropped (loss, rate queue or memory cap), 2 means duplicated. Raises
        ValueError only for a negative size or a non-finite time.
        """
        if size_bytes < 0:
            raise ValueError(f"size_bytes must be >= 0, got {size_bytes}")
        if not math.isfinite(now_s):
            raise ValueError(f"now_s must be finite, got {now_s}")
        self._expire_held(now_s)
        self.counters.offered += 1

        # One draw per stream per offered packet, whatever happens below.
        u_loss = self._rng_loss.random()
        z_jitter = self._rng_jitter.gauss(0.0, 1.0)
        u_reorder = self._rng_reorder.random()
        u_duplicate = self._rng_duplicate.random()

        if self._is_lost(u_loss):
            self.counters.dropped_loss += 1
            return 0

        copies = 2 if u_duplicate < self._duplicate_p else 1
        if (
            self._pending_packets + copies > self._max_pending_packets
            or self._pending_bytes + copies * size_bytes > self._max_pending_bytes
        ):
            self.counters.dropped_overflow += 1
            return 0

        depart_s = now_s
        if self._rate_bps > 0.0:
            tx_s = size_bytes * 8.0 / self._rate_bps
            backlog_s = self._link_free_s - now_s
            if backlog_s > 0.0 and backlog_s + tx_s > self._queue_s:
                self.counters.dropped_queue += 1
                return 0
            self._link_free_s = max(self._link_free_s, now_s) + tx_s
            depart_s = self._link_free_s

        release_s = depart_s + self._delay_s + abs(z_jitter) * self._jitter_s
        release_s = max(release_s, self._last_release_s)
        self._pending_packets += copies
        self._pending_bytes += copies * size_bytes
        if copies == 2:
            self.counters.duplicated += 1

        if u_reorder < self._reorder_p:
            deadline_s = release_s + self._reorder_timeout_s
            self._held.append(_Held(release_s, deadline_s, item, size_bytes, copies))
            return copies

        self._last_release_s = release_s
        self._schedule(release_s, item, size_bytes, copies)
        # Everything held so far is overtaken by this packet: release it right after.
        held, self._held = self._held, []
        for h in held:
            self.counters.reordered += 1
            self._schedule(max(h.release_s, release_s), h.item, h.size_bytes, h.copies)
        return copies

    def _is_lost(self, u: float) -> bool:
        if not self.config.bursty:
            return u < self._loss_p
        lost = self._bad
        if self._bad:
            self._bad = u >= self._ge_r
        else:
            self._bad = u < self._ge_p
        return lost

    def _schedule(self, release_s: float, item: T, size_bytes: int, copies: int) -> None:
        for _ in range(copies):
            heapq.heappush(self._heap, (release_s, self._order, size_bytes, item))
            self._order += 1

    def _expire_held(self, now_s: float) -> None:
        """Release (unreordered) every held packet whose wait for an overtaker is over."""
        if not self._held:
            return
        keep: list[_Held[T]] = []
        for h in self._held:
            if h.deadline_s <= now_s:
                self._schedule(h.deadline_s, h.item, h.size_bytes, h.copies)
            else:
                keep.append(h)
        self._held = keep

    # -- output --------------------------------------------------------------------------

    def pop_due(self, now_s: float) -> list[Released[T]]:
        """Remove and return every datagram due at or before ``now_s``, in release order.

        ``pop_due(math.inf)`` drains everything, held packets included.
        """
        self._expire_held(now_s)
        out: list[Released[T]] = []
        heap = self._heap
        while heap and heap[0][0] <= now_s:
            release_s, _, size_bytes, item = heapq.heappop(heap)
            self._pending_packets -= 1
            self._pending_bytes -= size_bytes
            out.append(Released(release_s, item))
        self.counters.passed += len(out)
        return out
