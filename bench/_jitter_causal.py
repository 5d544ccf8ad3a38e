"""A lower bound on the mean added delay of any CAUSAL buffer, on profiles whose packets
get independent delays before they queue.

``bench/_jitter_oracle.py`` bounds buffers that know the whole trace in advance; its
figures can sit far below anything a real buffer reaches, because knowing when the next
late packet comes is worth a lot. This module answers the question a real buffer faces:
knowing everything that has arrived so far, and even the exact law the network draws
its delays from, how well can a buffer do at best?

The network model is the benchmark's own (``bench/_jitter_traces.py``) for the
profiles marked ``independent``: packet ``k`` is sent every block ``T`` and gets a raw
delay ``X_k``, independent and identically distributed; one FIFO queue then delays it
behind the packet in front, ``D_k = max(X_k, D_{k-1} - T)``. Delays are measured above
the fastest delivery, in 1 ms steps (``X`` rounded down: packets come no later than in
the trace).

What a buffer knows when it decides. The receiver's clock ticks every ``T``; at a tick
it decodes what it plays next and chooses how long to play it (time-scaling by at most
``slew * T``), or conceals a block. It knows every arrival before the tick. If packet
``n`` is due at the tick with added delay ``d`` (play time minus its earliest possible
arrival), the ticks fall on a lattice ``phi + i T`` in ``d``, so packet ``n + i`` has
arrived iff ``D_{n+i} <= L(d) - i T``, ``L(d)`` the lattice point at or below ``d``.
In FIFO order the arrived packets are a prefix; say ``j`` packets from ``n`` on are in
hand (``j <= 0``: the due one and ``-j`` before it, discarded, are still out). The first
packet still out, ``n + j``, has only been seen not to arrive: its delay is ``X`` given
``X > L(d) - j T`` (the packet in front of it arrived by then, so the queue no longer
holds it back), and every later one is a fresh draw queued behind it. Nothing else
about the past says anything about the future, so ``(d, j)`` is the whole state, and
the best causal buffer is the optimal policy of a Markov decision process over it.

Moves from ``(d, j)``, as in the oracle:

* play packet ``n`` (only if ``j >= 1``) for ``T + delta`` with ``|delta| <= slew T``:
  cost ``d``; packet ``n + 1`` is due next at ``d + delta``;
* conceal a block of ``T + delta`` and discard ``n``: ``n + 1`` due at ``d + delta``;
* conceal a block of ``T + delta`` and keep waiting for ``n``: due at ``d + T + delta``;
* drop packet ``n`` unplayed (only if ``j >= 1``): ``n + 1`` due at once, ``d - T``.

Concealment is counted as audio, ``lam`` per block's worth: a concealed block of
``T + delta`` costs ``(T + delta) / T``, and never less than the one block of audio
lost with a discarded packet; a dropped packet costs ``lam`` too, as in the oracle.
(Counting concealed blocks instead would let a buffer wait out a spike in fewer,
longer concealed blocks; counting only concealed time would let it discard packets
faster than it conceals. rtai's replays count a block per concealment, which for the
buffers there is both: none of them time-scales concealment.)

The long-run average cost per block is found by relative value iteration; for any
function ``h`` the least of ``T h - h`` over the states is at most the optimal average
(``T`` the Bellman operator), so the figure is a lower bound however far the iteration
got. By weak duality, a buffer concealing at most a share ``p`` of its audio has a mean
delay of at least ``g(lam) - lam p`` for every ``lam``; :func:`bound_at` takes the best
over the multipliers of :func:`frontier`, which also replays each optimal policy on a
trace (what a causal buffer actually reaches there).

Simplifications that keep it a lower bound: the grid (delays, the tick phase and ``X``
rounded down to it, so every real schedule maps onto a grid schedule that conceals no
more and costs no more), and no delays above the largest raw delay plus a block and a
slew step (every packet is in hand there, so staying above costs delay for nothing).
The figure is for the stationary network, not one 60 s trace; the replays on the trace
say what the same policies reach there. Play ``T + delta`` with ``delta`` up to
``slew T`` matches the oracle's assumption about time-scaling; a buffer allowed to
time-scale faster could do better.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import sparse


@dataclass(frozen=True)
class Model:
    """The decision process for one law, block and slew (all in 1 ms steps)."""

    grid_ms: int
    block: int  # grid steps
    slew: int
    phase: int
    d: np.ndarray  # (S,) delay of each state
    j: np.ndarray  # (S,) packets in hand
    cost_delay: np.ndarray  # (A, S) delay cost of each move
    cost_lost: np.ndarray  # (A, S) lost blocks of each move (0 or 1)
    moves: tuple  # (kind, delta in grid steps) of each move, in the order of the arrays
    trans: list  # per move, the (S, S) transition matrix (scipy CSR)
    ok: np.ndarray  # (A, S) move allowed


def law_from_delays(delays_ms: np.ndarray) -> np.ndarray:
    """The pmf of raw delays above their fastest, on 1 ms steps rounded down."""
    x = np.floor(np.asarray(delays_ms, dtype=np.float64) - np.min(delays_ms) + 1e-9)
    pmf = np.bincount(x.astype(np.int64)).astype(np.float64)
    return pmf / pmf.sum()


def move_list(slew: int) -> list[tuple[str, int]]:
    """The moves (see the module docstring), each with its ``delta`` in grid steps."""
    deltas = range(-slew, slew + 1)
    return [(k, s) for k in ("play", "drop", "wait") for s in deltas] + [("skip", 0)]


def lost_blocks(kind: str, delta: int, block: int) -> float:
    """Audio a move loses, in blocks: concealment counted as audio, and never less than
    the block of a discarded or dropped packet."""
    if kind == "play":
        return 0.0
    if kind == "drop":  # the packet's audio is lost; the concealment is heard
        return max(block, block + delta) / block
    if kind == "wait":
        return (block + delta) / block
    return 1.0


def step(kind: str, delta: int, n: int, d: int, block: int) -> tuple[int, int]:
    """The packet due next and its delay (grid steps) after a move from ``(n, d)``."""
    if kind == "wait":
        return n, d + block + delta
    if kind == "skip":
        return n + 1, d - block
    return n + 1, d + delta


def lattice_floor(d: np.ndarray, phase: int, block: int) -> np.ndarray:
    """``L(d)``: the last tick at or before a packet due at added delay ``d``."""
    return phase + block * np.floor_divide(d - phase, block)


def build(
    pmf_ms: np.ndarray, block_ms: int, slew_ms: int, phase_ms: int, grid_ms: int = 1
) -> Model:
    """The states, moves and transition law (see the module docstring), on a grid of
    ``grid_ms`` (delays and the tick phase rounded down to it: still a lower bound).
    ``pmf_ms``: the raw delay's law on 1 ms steps (:func:`law_from_delays`)."""
    g = int(grid_ms)
    if block_ms % g or slew_ms % g:
        raise ValueError(
            f"the block ({block_ms} ms) and slew ({slew_ms} ms) must be whole grid steps"
        )
    block, slew, phase = block_ms // g, slew_ms // g, (phase_ms % block_ms) // g
    raw = np.asarray(pmf_ms, dtype=np.float64)
    pmf = np.add.reduceat(raw, np.arange(0, raw.size, g))  # X rounded down to the grid
    xmax = int(np.nonzero(pmf > 0)[0].max())
    cdf = np.cumsum(pmf)

    def F(x: np.ndarray) -> np.ndarray:  # P(X <= x), x integer
        xi = np.asarray(x, dtype=np.int64)
        return np.where(xi < 0, 0.0, cdf[np.clip(xi, 0, xmax)])

    dmax = xmax + block + slew
    jmax = (dmax - phase) // block + 2
    j_out = xmax // block + 2  # discarded packets that can still be out
    ds, js = np.meshgrid(np.arange(dmax + 1), np.arange(-j_out, jmax + 1), indexing="ij")
    d, j = ds.ravel(), js.ravel()
    nj = jmax + j_out + 1
    n_states = d.size

    def index(dd: np.ndarray, jj: np.ndarray) -> np.ndarray:
        return dd * nj + (np.clip(jj, -j_out, jmax) + j_out)

    lat = lattice_floor(d, phase, block)
    # A state whose first packet out could not be out (X > c impossible) never occurs;
    # its moves are kept harmless (it is taken as arrived).
    c = lat - j * block
    k_max = jmax + j_out + 2
    moves = move_list(slew)
    a_n = len(moves)
    cost_delay = np.zeros((a_n, n_states))
    cost_lost = np.zeros((a_n, n_states))
    nxt = np.zeros((a_n, n_states, k_max), dtype=np.int64)
    prob = np.zeros((a_n, n_states, k_max))
    ok = np.zeros((a_n, n_states), dtype=bool)
    surv = 1.0 - F(c)
    for a, (kind, s) in enumerate(moves):
        cost_lost[a] = lost_blocks(kind, s, block)
        if kind == "skip":
            ok[a] = (j >= 1) & (d >= block)
            nxt[a, :, 0] = index(np.maximum(d - block, 0), j - 1)
            prob[a, :, 0] = 1.0
            continue
        shift = 0 if kind == "wait" else 1
        d2 = d + s + (block if kind == "wait" else 0)
        ok[a] = (d2 >= 0) & (d2 <= dmax)
        if kind == "play":
            ok[a] &= j >= 1
            cost_delay[a] = d * g
        d2c = np.clip(d2, 0, dmax)
        lat2 = lattice_floor(d2c, phase, block)
        # Packet n + i has arrived by the next tick iff D <= lat2 - (i - shift) T.
        theta0 = lat2 - (j - shift) * block
        with np.errstate(invalid="ignore", divide="ignore"):
            p_first = np.where(surv > 1e-15, np.clip((F(theta0) - F(c)) / surv, 0.0, 1.0), 1.0)
        alive = p_first.copy()  # P(N >= k), k = 1 ...
        prob[a, :, 0] = 1.0 - p_first
        nxt[a, :, 0] = index(d2c, j - shift)
        for k in range(1, k_max):
            q = F(theta0 - k * block)  # the (k+1)-th arrives too
            last = k == k_max - 1
            pk = alive if last else alive * (1.0 - q)
            prob[a, :, k] = pk
            nxt[a, :, k] = index(d2c, j - shift + k)
            alive = alive * q
            if not alive.any():
                break
    trans = []
    rows = np.repeat(np.arange(n_states), k_max)
    for a in range(a_n):
        p_a, n_a = prob[a].ravel(), nxt[a].ravel()
        keep = p_a > 0
        trans.append(
            sparse.csr_matrix((p_a[keep], (rows[keep], n_a[keep])), shape=(n_states, n_states))
        )
    return Model(g, block, slew, phase, d, j, cost_delay, cost_lost, tuple(moves), trans, ok)


def _q(m: Model, base: np.ndarray, h: np.ndarray) -> np.ndarray:
    """Cost of every move from every state with relative values ``h`` after it."""
    return base + np.stack([t @ h for t in m.trans])


def average_cost(
    m: Model, lam: float, h: np.ndarray | None = None, sweeps: int = 4000, tol: float = 1e-3
) -> tuple[float, float, np.ndarray]:
    """Relative value iteration for ``delay + lam * lost`` per block: a lower and an
    upper bracket of the optimal long-run average, and the relative values reached
    (reuse them to warm-start a nearby ``lam``)."""
    h = np.zeros(m.d.size) if h is None else h.copy()
    base = m.cost_delay + lam * m.cost_lost
    base = np.where(m.ok, base, math.inf)
    lo = hi = 0.0
    last = -math.inf
    for i in range(sweeps):
        th = _q(m, base, h).min(axis=0)
        diff = th - h
        lo, hi = float(diff.min()), float(diff.max())
        if hi - lo <= tol * max(1.0, abs(lo)):
            break
        # States no policy reaches can keep the upper bracket open; the lower one is
        # what the bound uses: stop once it has settled.
        if i % 50 == 49:
            if abs(lo - last) <= 0.1 * tol * max(1.0, abs(lo)):
                break
            last = lo
        h = h + 0.5 * diff  # aperiodic: the same optimal average, halved steps
        h -= h[0]
    return lo, hi, h


def policy(m: Model, lam: float, h: np.ndarray) -> np.ndarray:
    """The move each state takes under relative values ``h`` (greedy, ties to the first)."""
    base = np.where(m.ok, m.cost_delay + lam * m.cost_lost, math.inf)
    return np.argmin(_q(m, base, h), axis=0)


@dataclass(frozen=True)
class Replay:
    mean_ms: float  # mean added delay of the played packets
    concealed_pct: float  # concealed and dropped blocks over all blocks
    played: int
    lost: float  # concealed audio and dropped packets, in blocks


def replay(m: Model, moves: np.ndarray, delay_ms: np.ndarray, start_ms: int) -> Replay:
    """Play a policy on one trace's queued delays (above the fastest, ms, one per
    packet; NaN for a lost packet): at each tick the state is read from the arrivals,
    not from the model, so the model's law is put to the test."""
    g = m.grid_ms
    x = np.floor(np.nan_to_num(np.asarray(delay_ms, dtype=np.float64), nan=1e9) / g + 1e-9)
    n_pk = x.size
    dmax = int(m.d.max())
    j_lo, j_hi = int(m.j.min()), int(m.j.max())
    width = j_hi - j_lo + 1
    block = m.block
    n, d = 0, int(start_ms) // g
    delay_sum = 0.0
    played, lost = 0, 0.0
    guard = 4 * n_pk + 100
    while n < n_pk and guard > 0:
        guard -= 1
        lat = int(lattice_floor(np.array([d]), m.phase, block)[0])
        # Packets n + i for i in j_lo .. j_hi: arrived iff x <= lat - i * block.
        j = j_lo
        for i in range(j_lo, j_hi + 1):
            k = n + i
            if k < 0:
                j = i + 1
                continue
            if k >= n_pk or x[k] > lat - i * block:
                break
            j = i + 1
        j = min(max(j, j_lo), j_hi)
        a = int(moves[d * width + (j - j_lo)])
        kind, sl = m.moves[a]
        if kind == "play":
            delay_sum += d * g
            played += 1
        lost += lost_blocks(kind, sl, block)
        n, d = step(kind, sl, n, d, block)
        d = min(max(d, 0), dmax)
    blocks = played + lost
    return Replay(
        delay_sum / played if played else math.nan,
        100.0 * lost / blocks if blocks else 0.0,
        played,
        lost,
    )


@dataclass(frozen=True)
class Point:
    """One multiplier: the optimal average's lower bracket and its policy on a trace."""

    lam: float
    g: float  # optimal long-run average of ``delay + lam * lost`` per block is >= g
    replayed: Replay  # the optimal policy for this lam, played on the trace


def frontier(m: Model, delay_ms: np.ndarray, lams) -> list[Point]:
    """For every multiplier (ascending, each warm-starting the next): the bracket and the
    optimal policy replayed on the trace's queued delays (``delay_ms``, above the
    fastest), starting at the law's largest delay (where nothing is late)."""
    out, h = [], None
    start = int(m.d.max() * m.grid_ms)
    for lam in sorted(float(x) for x in lams):
        lo, _, h = average_cost(m, lam, h)
        out.append(Point(lam, lo, replay(m, policy(m, lam, h), delay_ms, start)))
    return out


def bound_at(points: list[Point], concealed_pct: float) -> float:
    """Weak duality: no causal buffer concealing at most ``concealed_pct`` % of its audio
    has a mean added delay (ms) below this, on the stationary network."""
    p = concealed_pct / 100.0
    return max(0.0, max(pt.g - pt.lam * p for pt in points))
