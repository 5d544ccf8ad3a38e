"""A lower bound on the mean added delay of ANY playout schedule, knowing the trace.

The hindsight-best constant delay (``bench/jitter.py``) answers "how well could a buffer
that never changes its delay do?". This answers the stronger question "how well could
any buffer do, one that changes its delay over time as fast as time-scale modification
allows, if it knew every arrival in advance?". If even that oracle needs more than 0.8
times the fixed reference's delay at rtai's concealment, no causal buffer can reach the
goal on that trace.

The model (all times on the receiver's clock, as the replays):

* Packet ``k`` could have arrived at the earliest at ``e_k`` (send time plus the trace's
  fastest delivery). It is played at ``e_k + d_k``; ``d_k`` is its added delay (the
  replays' definition). It can only be played once it has been taken at a tick, so it
  needs ``d_k >= r_k``, ``r_k`` = first tick at or after its arrival minus ``e_k``.
* Between consecutive slots the delay may change by at most ``slew * block`` (playing a
  block ``1 +/- slew`` times its length: stretching or accelerating, as WSOLA does). It
  may also jump up by whole blocks, each an inserted concealed block, or down by one
  block, a block of audio dropped (counted as concealed too).
* A slot is either its packet played (``d_k >= r_k``) or concealed (any ``d_k``; the
  delay is kept: the packet is dropped).

The delay is on a 1 ms grid and ``r_k`` is rounded *down* to it, with ``slew * block`` a
whole number of grid steps: every schedule of the continuous model then maps (delay
rounded down) onto a grid schedule that conceals the same and costs no more, so the
grid optimum is a lower bound of the continuous one.

Dynamic programme over (slot, delay) minimising ``sum of played d_k + lam * lost blocks``:
:func:`solve` for one multiplier, back-tracked to the schedule; :func:`values` the optimum
for many multipliers at once. :func:`bound` takes, by weak duality, the best of
``V(lam) - lam * budget`` over a grid of multipliers, which no schedule concealing no more
can beat. ``grow=False`` forbids stretching up: the delay then grows only by concealing
(a reactive buffer with perfect timing of its shrinking).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

GRID_MS = 1.0


@dataclass(frozen=True)
class Schedule:
    lam: float
    mean_ms: float  # mean added delay of the played packets
    concealed_pct: float  # concealed (and dropped) blocks over all blocks
    played: int
    concealed: int
    inserted: int  # concealed blocks inserted to grow the delay
    dropped: int  # blocks dropped to shrink it
    delay_sum_ms: float  # sum of the played packets' added delays

    @property
    def lost(self) -> int:
        """Blocks concealed, inserted or dropped."""
        return self.concealed + self.inserted + self.dropped


def required_ms(trace, tick_phase: float = 0.5) -> np.ndarray:
    """``r_k`` (ms): the least added delay at which packet ``k`` can be played; inf if
    it is lost."""
    b = trace.block_s
    t0 = tick_phase * b
    earliest = trace.send_s + trace.min_delay_s
    a = trace.arrival_s
    with np.errstate(invalid="ignore"):
        tick = t0 + np.ceil((a - t0) / b - 1e-9) * b
    r = (tick - earliest) * 1000.0
    return np.where(np.isnan(a), np.inf, np.maximum(r, 0.0))


def _steps(slew: float, block_ms: float) -> int:
    step = slew * block_ms / GRID_MS
    s = int(round(step))
    if abs(step - s) > 1e-9 or s < 0:
        raise ValueError(f"slew * block ({slew * block_ms:g} ms) must be whole grid steps")
    return s


def _grid(
    r_ms: np.ndarray, block_ms: float, slew: float, grow: bool
) -> tuple[int, int, int, np.ndarray, int, int]:
    """The programme's grid: slew steps down and up, grid steps per block, each packet's
    required delay in steps (lost packets: never playable), blocks and states modelled."""
    s = _steps(slew, block_ms)
    s_up = s if grow else 0
    bsteps = int(round(block_ms / GRID_MS))
    finite = r_ms[np.isfinite(r_ms)]
    req = np.where(np.isfinite(r_ms), np.floor(r_ms / GRID_MS + 1e-9), np.iinfo(np.int32).max)
    req = req.astype(np.int64)
    top = int(finite.max() / GRID_MS) + 1 if finite.size else 1
    nb = top // bsteps + 2
    if nb > 127:
        raise ValueError("delays beyond 127 blocks are not modelled")
    return s, s_up, bsteps, req, nb, nb * bsteps  # states 0 .. m-1 (ms / GRID_MS)


def solve(
    r_ms: np.ndarray, block_ms: float, slew: float, lam: float, grow: bool = True
) -> Schedule:
    """The schedule minimising ``sum(d_k over played) + lam * lost blocks``. With
    ``grow`` False the delay may rise only by inserting concealed blocks (no stretching
    ahead of a late packet), and still fall by ``slew``."""
    s, s_up, bsteps, req, nb, m = _grid(r_ms, block_ms, slew, grow)
    d = np.arange(m, dtype=np.float64) * GRID_MS
    rows = (np.arange(m) // bsteps).astype(np.float64)
    n = r_ms.size
    v = np.zeros(m)
    # Back-pointers: slew offset (-s..s), block jump (-1..MAX), played or not.
    b_off = np.zeros((n, m), dtype=np.int8)
    b_jump = np.zeros((n, m), dtype=np.int8)
    b_play = np.zeros((n, m), dtype=bool)
    inf = math.inf
    offs = np.arange(-s_up, s + 1)  # previous delay = this one + offset
    shifted = np.full((offs.size, m), inf)
    for k in range(n):
        # Slew: w(x) = min over |o| <= s of v(x + o), i.e. the previous delay was x + o.
        shifted.fill(inf)
        for i, o in enumerate(offs):
            if o >= 0:
                shifted[i, : m - o] = v[o:]
            else:
                shifted[i, -o:] = v[: m + o]
        oi = np.argmin(shifted, axis=0)
        w = shifted[oi, np.arange(m)]
        # Jumps up by j blocks (j inserted concealed blocks): u(x) = min_j w(x - j B) + j lam.
        w2 = (w - rows * lam).reshape(nb, bsteps)
        cm = np.minimum.accumulate(w2, axis=0)
        ridx = np.where(w2 <= cm, np.arange(nb)[:, None], -1)
        src = np.maximum.accumulate(ridx, axis=0)
        u = (cm + np.arange(nb)[:, None] * lam).reshape(m)
        jump = (np.arange(nb)[:, None] - src).reshape(m)
        # One block down (a block dropped).
        down = np.full(m, inf)
        down[: m - bsteps] = w[bsteps:] + lam
        use_down = down < u
        u = np.where(use_down, down, u)
        jump = np.where(use_down, -1, jump)
        # This slot: play the packet (if it is there by then) or conceal it.
        play_cost = np.where(np.arange(m) >= req[k], u + d, inf)
        conceal_cost = u + lam
        play = play_cost <= conceal_cost
        v = np.where(play, play_cost, conceal_cost)
        b_off[k] = offs[oi]
        b_jump[k] = jump
        b_play[k] = play
    # Back-track.
    x = int(np.argmin(v))
    played = concealed = inserted = dropped = 0
    total = 0.0
    for k in range(n - 1, -1, -1):
        if b_play[k, x]:
            played += 1
            total += x * GRID_MS
        else:
            concealed += 1
        j = int(b_jump[k, x])
        if j > 0:
            inserted += j
        elif j < 0:
            dropped += 1
        x = x - j * bsteps
        x = x + int(b_off[k, x])
    lost_blocks = concealed + inserted + dropped
    blocks = played + concealed + inserted
    return Schedule(
        lam,
        total / played if played else math.nan,
        100.0 * lost_blocks / blocks if blocks else 0.0,
        played,
        concealed,
        inserted,
        dropped,
        total,
    )


def values(
    r_ms: np.ndarray, block_ms: float, slew: float, lams: np.ndarray, grow: bool = True
) -> np.ndarray:
    """The optimum of :func:`solve` (``sum of played d_k + lam * lost blocks``) for every
    ``lam`` in ``lams`` at once, without the schedules (no back-tracking)."""
    s, s_up, bsteps, req, nb, m = _grid(r_ms, block_ms, slew, grow)
    lam = np.asarray(lams, dtype=np.float64)[:, None]
    n_lam = lam.shape[0]
    d = np.arange(m, dtype=np.float64) * GRID_MS
    idx = np.arange(m)
    jump_cost = (np.arange(m) // bsteps) * lam  # (L, m): j lam for the row's block index
    inf = math.inf
    v = np.zeros((n_lam, m))
    pad = np.full((n_lam, m + s + s_up), inf)
    for k in range(r_ms.size):
        # Slew: the previous delay was this one + o, o in -s_up..s.
        pad[:, s_up : s_up + m] = v
        w = pad[:, 0:m].copy()
        for o in range(1, s + s_up + 1):
            np.minimum(w, pad[:, o : o + m], out=w)
        # Jumps up by whole blocks of inserted concealment.
        w2 = (w - jump_cost).reshape(n_lam, nb, bsteps)
        u = np.minimum.accumulate(w2, axis=1).reshape(n_lam, m) + jump_cost
        # One block down (dropped).
        np.minimum(u[:, : m - bsteps], w[:, bsteps:] + lam, out=u[:, : m - bsteps])
        play = np.where(idx >= req[k], u + d, inf)
        v = np.minimum(play, u + lam)
    return v.min(axis=1)


def bound(
    r_ms: np.ndarray,
    block_ms: float,
    slew: float,
    concealed_pct: float,
    grow: bool = True,
    points: int = 24,
) -> float:
    """A lower bound (ms) on the mean added delay of any schedule whose lost blocks are
    at most ``concealed_pct`` % of all blocks played (packets and concealment).

    Weak duality: for every ``lam`` and every schedule losing ``L <= B`` blocks, its sum
    of played delays ``S >= V(lam) - lam * L >= V(lam) - lam * B``, ``V`` the programme's
    optimum. The bound is the best of these over a log grid of multipliers, refined once
    around the best, divided by all packets (as if the lost ones had no delay): each step
    only lowers it.
    """
    n = r_ms.size
    # Lost blocks allowed: concealed over all blocks played, as the replays count it.
    p = min(concealed_pct / 100.0, 0.5)
    budget = p * n / (1.0 - p)
    lams = np.geomspace(1e-2, 1e7, points)
    g = values(r_ms, block_ms, slew, lams, grow) - lams * budget
    i = int(np.argmax(g))
    lo, hi = lams[max(0, i - 1)], lams[min(points - 1, i + 1)]
    fine = np.geomspace(lo, hi, points)
    g2 = values(r_ms, block_ms, slew, fine, grow) - fine * budget
    return max(0.0, float(max(g.max(), g2.max()))) / n
