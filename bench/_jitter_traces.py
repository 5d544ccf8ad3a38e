"""Arrival-time traces for the jitter-buffer benchmark: one network profile each.

A trace is, for every packet ``k`` one sender sends, its send time and its arrival
time at the receiver (NaN when it is lost), both in seconds on the *receiver's*
clock, starting at 0. The receiver's playout clock is the reference; a sender
whose clock runs fast sends its blocks a little more often than every block period.

Every profile is a function of time, not of a packet count, so the same profile
serves 10 ms and 20 ms blocks alike, and it is deterministic for a given seed.
Arrival order is FIFO (a packet never overtakes the one sent before it: it
queues behind it), as on one path through one queue; ``reorder=True`` lets them
overtake instead.

Profiles (``PROFILES``):

``steady``
    20 ms propagation plus uniform 0..0.5 ms: a quiet wired path.
``gauss5`` / ``gauss20``
    Gaussian queueing delay with a standard deviation of 5 / 20 ms, centred two
    deviations above the 20 ms floor and cut at the floor (never faster than the
    propagation delay).
``spikes``
    2 ms Gaussian jitter plus delay spikes at random (Poisson, one every 4 s on
    average) of Pareto size (scale 40 ms, shape 1.5, capped at 400 ms): a median
    spike of 63 ms, one in ten above 190 ms. The packets behind a spike queue up
    and arrive in a burst right after it.
``route``
    2 ms jitter; the base delay steps from 20 to 60 ms for ten seconds, a third
    into the trace, then back.
``wifi``
    1 ms jitter on a 10 ms floor; every 2..5 s the link holds every packet for
    100..300 ms (uniform), then delivers them in one burst.
``drift+`` / ``drift-``
    The sender's clock runs 1000 ppm fast / slow against the receiver's (its block
    period is ``T / (1 +/- 1e-3)`` in receiver time), with 2 ms Gaussian jitter.

``loss_pct`` drops that share of packets at random (own seed) on top of any profile.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

BASE_S = 0.020


@dataclass(frozen=True)
class Trace:
    key: str
    label: str
    block_s: float  # nominal block period (the receiver's)
    send_s: np.ndarray  # (K,) when packet k leaves the sender (capture end), receiver clock
    arrival_s: np.ndarray  # (K,) arrival time, NaN if lost
    sender_ppm: float = 0.0  # > 0: the sender's clock runs fast (packets come more often)

    @property
    def packets(self) -> int:
        return int(self.send_s.size)

    @property
    def duration_s(self) -> float:
        return float(self.send_s[-1] - self.send_s[0]) + self.block_s

    @property
    def delay_s(self) -> np.ndarray:
        return self.arrival_s - self.send_s

    @property
    def min_delay_s(self) -> float:
        """The network's fastest delivery: what no buffer can take back."""
        return float(np.nanmin(self.delay_s))

    @property
    def lost(self) -> int:
        return int(np.isnan(self.arrival_s).sum())


def _rng(seed: int, key: str, stream: int = 0) -> np.random.Generator:
    salt = sum((i + 1) * ord(c) for i, c in enumerate(key))
    return np.random.default_rng([seed, salt, stream])


def _gauss_queue(rng: np.random.Generator, k: int, sigma_s: float) -> np.ndarray:
    """Gaussian queueing delay (std ``sigma_s``) centred 2 sigma above 0, cut at 0."""
    return np.maximum(0.0, sigma_s * (2.0 + rng.standard_normal(k)))


def _send_times(duration_s: float, block_s: float, ppm: float) -> np.ndarray:
    period = block_s / (1.0 + ppm * 1e-6)
    k = int(math.floor(duration_s / period))
    return (np.arange(k) + 1) * period  # block k is captured over [k, k+1) periods


def steady(send: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return BASE_S + rng.uniform(0.0, 0.0005, send.size)


def gauss(sigma_s: float) -> Callable[[np.ndarray, np.random.Generator], np.ndarray]:
    def delay(send: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return BASE_S + _gauss_queue(rng, send.size, sigma_s)

    return delay


def spikes(
    send: np.ndarray,
    rng: np.random.Generator,
    every_s: float = 4.0,
    scale_s: float = 0.040,
    shape: float = 1.5,
    cap_s: float = 0.400,
) -> np.ndarray:
    d = BASE_S + _gauss_queue(rng, send.size, 0.002)
    t, end = 0.0, float(send[-1])
    while True:
        t += rng.exponential(every_s)
        if t >= end:
            break
        size = min(cap_s, scale_s * (1.0 + rng.pareto(shape)))
        k = int(np.searchsorted(send, t))
        if k < send.size:
            d[k] += size  # FIFO makes the packets behind it queue up
    return d


def single_spike(at_s: float, size_s: float, jitter_s: float = 0.002):
    """One spike of ``size_s`` at ``at_s`` on light Gaussian jitter (for the tests)."""

    def delay(send: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        d = BASE_S + _gauss_queue(rng, send.size, jitter_s)
        k = int(np.searchsorted(send, at_s))
        if k < send.size:
            d[k] += size_s
        return d

    return delay


def route(send: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    d = BASE_S + _gauss_queue(rng, send.size, 0.002)
    start = float(send[-1]) / 3.0
    d[(send >= start) & (send < start + 10.0)] += 0.040
    return d


def wifi(
    send: np.ndarray,
    rng: np.random.Generator,
    gap_s: tuple[float, float] = (2.0, 5.0),
    hold_s: tuple[float, float] = (0.100, 0.300),
) -> np.ndarray:
    natural = send + 0.010 + _gauss_queue(rng, send.size, 0.001)
    arrival = natural.copy()
    t, end = 0.0, float(natural[-1])
    while True:
        t += rng.uniform(*gap_s)  # from the end of the previous hold
        if t >= end:
            break
        hold = rng.uniform(*hold_s)
        held = (natural >= t) & (natural < t + hold)
        arrival[held] = t + hold  # released together; FIFO spacing is added later
        t += hold
    return arrival - send


def piecewise(*parts: tuple[float, float], floor_s: float = BASE_S):
    """Gaussian jitter that changes over time: ``(until_s, sigma_s)`` pairs (tests)."""

    def delay(send: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        z = 2.0 + rng.standard_normal(send.size)
        sigma = np.full(send.size, parts[-1][1])
        for until_s, s in reversed(parts):
            sigma[send < until_s] = s
        return floor_s + np.maximum(0.0, sigma * z)

    return delay


@dataclass(frozen=True)
class Profile:
    key: str
    label: str
    delay: Callable[[np.ndarray, np.random.Generator], np.ndarray]
    sender_ppm: float = 0.0
    # True when every packet's delay before it queues is an independent draw from one
    # law (the queue then makes the delays depend on each other only through it): the
    # best causal buffer is then computable (bench/_jitter_causal.py).
    independent: bool = False


PROFILES: dict[str, Profile] = {
    p.key: p
    for p in [
        Profile("steady", "steady (0.5 ms jitter)", steady, independent=True),
        Profile("gauss5", "Gaussian jitter, 5 ms std", gauss(0.005), independent=True),
        Profile("gauss20", "Gaussian jitter, 20 ms std", gauss(0.020), independent=True),
        Profile("spikes", "Pareto delay spikes (1 per 4 s)", spikes, independent=True),
        Profile("route", "route change: +40 ms for 10 s", route),
        Profile("wifi", "Wi-Fi bursts: 100-300 ms holds", wifi),
        Profile("drift+", "sender clock +1000 ppm (fast)", gauss(0.002), 1000.0, True),
        Profile("drift-", "sender clock -1000 ppm (slow)", gauss(0.002), -1000.0, True),
    ]
}


def make_trace(
    profile: Profile | str,
    duration_s: float = 60.0,
    block_s: float = 0.010,
    seed: int = 1,
    loss_pct: float = 0.0,
    reorder: bool = False,
) -> Trace:
    """The arrival trace of ``profile`` for ``duration_s`` of blocks of ``block_s``."""
    p = PROFILES[profile] if isinstance(profile, str) else profile
    send = _send_times(duration_s, block_s, p.sender_ppm)
    delay = p.delay(send, _rng(seed, p.key, 0))
    arrival = send + delay
    if not reorder:
        # One queue: a packet arrives no earlier than the one in front of it (a burst
        # shares one arrival time; the simulation keeps send order among equal times).
        arrival = np.maximum.accumulate(arrival)
    if loss_pct > 0:
        lost = _rng(seed, p.key, 1).random(send.size) < loss_pct / 100.0
        arrival = np.where(lost, np.nan, arrival)
    label = p.label + (f", {loss_pct:g} % loss" if loss_pct else "")
    return Trace(p.key, label, block_s, send, arrival, p.sender_ppm)


def custom_trace(
    key: str,
    delay: Callable[[np.ndarray, np.random.Generator], np.ndarray],
    duration_s: float,
    block_s: float = 0.010,
    seed: int = 1,
    sender_ppm: float = 0.0,
) -> Trace:
    """A trace from a delay function (see :func:`single_spike`, :func:`piecewise`)."""
    return make_trace(Profile(key, key, delay, sender_ppm), duration_s, block_s, seed)
