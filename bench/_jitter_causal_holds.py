"""A lower bound on the mean added delay of any CAUSAL buffer on a network that HOLDS
packets now and then (the ``wifi`` profile), and the optimal policies behind it.

``bench/_jitter_causal.py`` does this where every packet's delay is an independent draw;
its docstring is the model this one extends (same moves, same cost accounting, same
Lagrange multiplier and weak duality: :func:`bench._jitter_causal.bound_at` is reused).
On ``wifi`` the network has memory: packets get 1 ms Gaussian jitter on a 10 ms floor,
and a gap after the end of each hold (2..5 s) the link holds every packet for
100..300 ms, then releases them together (``bench/_jitter_traces.py``). A buffer that
has watched the bursts knows how long ago the last one ended; the next hold cannot
start before the gap law's least gap, and its hazard grows towards the largest.

The network as the model's buffer sees it, on the receiver's tick lattice (``T`` the
block, ticks ``phase`` ms after each packet's earliest possible arrival ``e_k``; all
times in whole ticks, nothing rounded away):

* a hold is its first held packet's slot ``t'`` and its release tick ``r`` (the first
  tick at or after the burst): every packet with ``e_k`` in ``[t', r)`` is in hand from
  tick ``r`` on, not before; ``r - t' = phase + m T`` (the hold law, ``m >= 0``);
* the next hold's first slot is ``t'' = r + (T - phase) + i T`` (the gap law, ``i >= 0``);
* a packet outside holds is in hand one tick after its earliest arrival with
  probability ``on_time`` (its jitter ``X <= phase``), and surely by the tick after
  (the law must have ``X < phase + T``: :func:`learn_law` refuses another).

The law is learnt from the generator itself (:func:`learn_law`, from a long run with
its own seed): the held packets are the runs of packets sharing one arrival time, the
hold's first slot is the run's first packet, ``r`` the first tick after the run's
arrival; ``on_time`` and the largest jitter come from the packets not held.

State at a tick, what the buffer is TOLD: its delay ``d`` (as in the parent model:
packet ``n`` due at added delay ``d``, decided at the last tick at or before it), and
the network's state: ``G_i^b`` (no hold under way, ``i`` ticks since the last release,
``b`` whether the packet whose first tick this is has come) or ``E_m`` (a hold under
way whose first held slot was ``phase + m T`` ms ago). Which packets are in hand follows
from these: in ``G_i^b`` every packet due at a tick before this one, and this tick's if
``b``; in ``E_m`` those sent before the hold (tick cell of ``d`` above ``m``). The next
states: ``G_i -> E_0`` with the gap law's hazard at ``i`` (else ``G_{i+1}^b``, ``b``
drawn), ``E_m -> G_0`` with the hold law's hazard (else ``E_{m+1}``). A move ends at
the tick of the next decision, 0, 1 or 2 ticks later (as the lattice in the parent).

Simplifications, each keeping the figure a LOWER bound:

* The jitter of a packet outside a hold is kept only as "in hand at its first tick or
  not"; the run-of-equal-arrivals hold in the model starts at its first held packet's
  slot, so every packet is in hand in the model no later than in the generator's
  trace (a packet counted as held is released at ``r`` in both; one after the run but
  before ``r`` comes by ``r`` in the model and no earlier in the trace).
* The buffer is TOLD the network's state: that a hold has begun as soon as its first
  held packet is due (a real buffer only sees a packet overdue, and cannot tell the
  1 ms jitter's rare late packet from a hold's first one until a tick later), and
  ``b`` for the packet at its first tick. More information can only lower the optimum.
* Delays on a grid of ``grid_ms`` and the tick phase rounded down to it (as the parent).
* No delays above the longest hold plus a block and a slew step: every packet is in
  hand there whatever the network does.

What is NOT a proof: the law is the empirical one, and gaps, holds and jitter are taken
as independent; in the generator the gap and the hold share the release's sub-tick
phase and a jittered packet can end up first held, which moves the gap and hold laws'
end slots by one tick with small probability. The test suite checks that the model's
average equals what its policy does on long generator traces read causally
(tests/unit/test_jitter_causal_holds.py).

Solving. The network's clock makes a cycle (release, gap, hold, release); relative value
iteration would need thousands of sweeps to carry values round it. :func:`solve` sweeps
the network states instead in reverse time order (Gauss-Seidel: one sweep is one
backward induction over a whole cycle, the next cycle's values taken from the last
sweep) on costs less a running estimate of the average, which it corrects by the drift
of a reference state per cycle and keeps inside the certified bracket; each sweep takes
half a step (as the parent's iteration: an aperiodic chain, the same fixed point). The
figure reported is still the certified one: the least of ``T h - h`` over all states for
the final relative values ``h`` (one Jacobi application of the Bellman operator), a
lower bound on the optimal average however far the iteration got. On ``wifi`` (about
330 000 states, 16 moves) a multiplier takes seconds. :func:`frontier` replays each
multiplier's optimal policy on a trace, reading the state from the arrivals alone
(:func:`run`: a causal buffer; where the model's told state is not readable yet, the
likelier one given what has arrived).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import _jitter_causal as jc
import numpy as np
from scipy import sparse


@dataclass(frozen=True)
class HoldLaw:
    """What the buffer is told about the network (whole milliseconds, tick lattice)."""

    block_ms: int
    phase_ms: int  # ticks fall this long after each packet's earliest arrival (mod block)
    on_time: float  # P(a packet outside holds is in hand at its first tick)
    jitter_max_ms: float  # largest delay of a packet outside holds (above the fastest)
    gap_pmf: np.ndarray | None  # [i]: next first held slot = release tick + T - phase + i T
    hold_pmf: np.ndarray | None  # [m]: release tick = first held slot + phase + m T
    holds: int  # holds the law was learnt from


def _runs(arrival_ms: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """First packet of each run of at least two packets sharing one arrival time, and
    a mask of every packet in such a run (a hold's burst)."""
    same = np.diff(arrival_ms) <= 1e-6
    held = np.zeros(arrival_ms.size, dtype=bool)
    held[:-1] |= same
    held[1:] |= same
    first = np.nonzero(same & ~np.concatenate(([False], same[:-1])))[0]
    return first, held


def learn_law(
    chunks: Iterable[tuple[np.ndarray, np.ndarray]], block_ms: int, phase_ms: int
) -> HoldLaw:
    """The hold, gap and jitter laws from traces of the generator: ``chunks`` of (send
    times, FIFO arrival times) in seconds, each an independent run (gaps are counted
    only between holds of one chunk). No run of equal arrivals at all: no holds."""
    t_ms, p_ms = float(block_ms), float(phase_ms)
    if not 0 < phase_ms < block_ms:
        raise ValueError(f"the tick phase ({phase_ms} ms) must lie inside the block")
    gaps, holds, late, total, xmax = [], [], 0, 0, 0.0
    for send_s, arrival_s in chunks:
        send = np.asarray(send_s, dtype=np.float64) * 1000.0
        arr = np.asarray(arrival_s, dtype=np.float64) * 1000.0
        if np.isnan(arr).any():
            raise ValueError("the hold model has no lost packets")
        e = send + float(np.min(arr - send))  # earliest possible arrivals
        first, held = _runs(arr)
        x = (arr - e)[~held]
        late += int(np.count_nonzero(x > p_ms + 1e-9))
        total += x.size
        xmax = max(xmax, float(x.max(initial=0.0)))
        if first.size == 0:
            continue
        m = np.ceil((arr[first] - e[first] - p_ms) / t_ms - 1e-9).astype(np.int64)
        release = e[first] + p_ms + t_ms * m
        i = np.rint((e[first[1:]] - release[:-1] - (t_ms - p_ms)) / t_ms).astype(np.int64)
        if (m < 0).any() or (i < 0).any():
            raise ValueError("holds overlap or release before they start")
        holds.append(m)
        gaps.append(i)
    if xmax >= p_ms + t_ms:
        raise ValueError(f"jitter up to {xmax:.1f} ms: the model needs less than a block")
    n_holds = int(sum(h.size for h in holds))
    gap = np.concatenate(gaps) if gaps else np.zeros(0, dtype=np.int64)
    if n_holds == 0 or gap.size == 0:
        gap_pmf = hold_pmf = None
    else:
        gap_pmf = np.bincount(gap).astype(np.float64) / gap.size
        hold_pmf = np.bincount(np.concatenate(holds)).astype(np.float64) / n_holds
    on_time = 1.0 - late / total if total else 1.0
    return HoldLaw(block_ms, phase_ms, on_time, xmax, gap_pmf, hold_pmf, n_holds)


@dataclass(frozen=True)
class Net:
    """The network's states at a tick, their one- and two-tick transitions, and what
    each lets the buffer have in hand."""

    need: np.ndarray  # (N,) the due packet is in hand iff its tick cell >= need
    p1: sparse.csr_matrix  # (N, N) one tick
    p2: sparse.csr_matrix  # (N, N) two ticks
    order: np.ndarray  # sweep order: reverse time, the cycle cut at the release
    gap_state: np.ndarray  # (Ng, 2): index of G_i^b (G_0 for both b at i = 0)
    hold_state: np.ndarray  # (Nh,): index of E_m
    gap_hazard: np.ndarray  # (Ng,) P(a hold's first slot before the next tick | none yet)
    hold_zero: float  # P(a hold releases at the first tick after its first slot)
    ticks_per_sweep: float  # mean ticks a sweep carries the last swept state's value


def _hazard(pmf: np.ndarray) -> np.ndarray:
    tail = np.cumsum(pmf[::-1])[::-1]
    return np.where(tail > 1e-15, pmf / np.maximum(tail, 1e-300), 1.0)


def net_chain(law: HoldLaw) -> Net:
    """The network's Markov chain on ticks (``G_i^b``, ``E_m``; see the module docstring);
    with no holds in the law, only ``G^0`` and ``G^1``."""
    q = float(law.on_time)
    rows: list[int] = []
    cols: list[int] = []
    vals: list[float] = []

    def edge(a: int, b: int, p: float) -> None:
        if p > 0:
            rows.append(a)
            cols.append(b)
            vals.append(p)

    if law.gap_pmf is None or law.hold_pmf is None:  # jitter only: G^0 (0) and G^1 (1)
        need = np.array([1, 0])
        for a in (0, 1):
            edge(a, 0, 1.0 - q)
            edge(a, 1, q)
        order = np.array([1, 0])
        gap_state = np.array([[0, 1]])
        hold_state = np.zeros(0, dtype=np.int64)
        hg, h0 = np.zeros(1), 0.0
    else:
        gp = np.trim_zeros(np.asarray(law.gap_pmf, dtype=np.float64), "b")
        hp = np.trim_zeros(np.asarray(law.hold_pmf, dtype=np.float64), "b")
        ng, nh = gp.size, hp.size - 1
        hg, hh, h0 = _hazard(gp / gp.sum()), _hazard(hp / hp.sum()), float(hp[0] / hp.sum())
        gap_state = np.zeros((ng, 2), dtype=np.int64)
        gap_state[1:, 0] = 2 * np.arange(1, ng) - 1
        gap_state[1:, 1] = 2 * np.arange(1, ng)
        hold_state = 2 * ng - 1 + np.arange(nh)
        n = 2 * ng - 1 + nh
        need = np.zeros(n, dtype=np.int64)
        need[gap_state[1:, 0]] = 1
        need[hold_state] = np.arange(nh) + 1
        for i in range(ng):
            for a in set(gap_state[i].tolist()):
                if i + 1 < ng:
                    edge(a, int(gap_state[i + 1, 1]), (1.0 - hg[i]) * q)
                    edge(a, int(gap_state[i + 1, 0]), (1.0 - hg[i]) * (1.0 - q))
                if nh:
                    edge(a, int(hold_state[0]), hg[i] * (1.0 - h0))
                edge(a, 0, hg[i] * (h0 if nh else 1.0))
        for m in range(nh):
            haz = hh[m + 1]
            edge(int(hold_state[m]), 0, haz)
            if m + 1 < nh:
                edge(int(hold_state[m]), int(hold_state[m + 1]), 1.0 - haz)
        order = np.concatenate([hold_state[::-1], gap_state[:0:-1, ::-1].ravel(), [0]])
    n = need.size
    p1 = sparse.csr_matrix((vals, (rows, cols)), shape=(n, n))
    p2 = (p1 @ p1).tocsr()
    # How many ticks a sweep carries the last state's value: the mean ticks from it
    # along transitions to states swept before it (the rest come from the last sweep).
    pos = np.empty(n, dtype=np.int64)
    pos[order] = np.arange(n)
    ahead = np.zeros(n)
    for x in order:
        y, p = _succ(p1, int(x))
        fwd = pos[y] < pos[x]
        ahead[x] = 1.0 + float(p[fwd] @ ahead[y[fwd]])
    return Net(need, p1, p2, order, gap_state, hold_state, hg, h0, float(ahead[order[-1]]))


@dataclass(frozen=True)
class Model:
    """The decision process for one law, slew and grid (delays in grid steps)."""

    law: HoldLaw
    grid_ms: int
    block: int
    slew: int
    phase: int
    dmax: int
    cell: np.ndarray  # (D,) tick cell of each delay: L(d) = phase + block * cell
    moves: tuple  # (kind, delta in grid steps), as the parent's
    d2: np.ndarray  # (A, D) the next decision's delay
    ticks: np.ndarray  # (A, D) ticks from this decision to the next (0, 1 or 2)
    ok: np.ndarray  # (A, D) move allowed (delay bounds; the due packet aside)
    needs: np.ndarray  # (A,) move needs the due packet in hand (play, skip)
    cost_delay: np.ndarray  # (A, D)
    cost_lost: np.ndarray  # (A, D)
    net: Net

    @property
    def states(self) -> int:
        return int(self.cell.size * self.net.need.size)


def build(law: HoldLaw, slew_ms: int, grid_ms: int = 1) -> Model:
    """The states, moves and transitions (see the module docstring)."""
    g = int(grid_ms)
    if law.block_ms % g or slew_ms % g:
        raise ValueError(
            f"the block ({law.block_ms} ms) and slew ({slew_ms} ms) must be whole grid steps"
        )
    net = net_chain(law)
    block, slew, phase = law.block_ms // g, slew_ms // g, law.phase_ms // g
    nh = net.hold_state.size
    dmax = phase + block * (nh + 1) + slew
    d = np.arange(dmax + 1)
    cell = np.floor_divide(d - phase, block)
    moves = jc.move_list(slew)
    a_n = len(moves)
    d2 = np.zeros((a_n, d.size), dtype=np.int64)
    ok = np.zeros((a_n, d.size), dtype=bool)
    cost_delay = np.zeros((a_n, d.size))
    cost_lost = np.zeros((a_n, d.size))
    needs = np.array([kind in ("play", "skip") for kind, _ in moves])
    shift = np.zeros(a_n, dtype=np.int64)
    for a, (kind, s) in enumerate(moves):
        n2, d2[a] = jc.step(kind, s, 0, d, block)
        shift[a] = n2
        ok[a] = (d2[a] >= 0) & (d2[a] <= dmax) & ((d >= block) | (kind != "skip"))
        cost_lost[a] = jc.lost_blocks(kind, s, block)
        if kind == "play":
            cost_delay[a] = d * g
    d2 = np.clip(d2, 0, dmax)
    ticks = shift[:, None] + cell[d2] - cell[None, :]
    if (ticks[ok] < 0).any() or (ticks[ok] > 2).any():
        raise ValueError("a move spans more than two ticks: slew too large for the block")
    ticks = np.clip(ticks, 0, 2)
    return Model(
        law, g, block, slew, phase, dmax, cell, tuple(moves), d2, ticks, ok, needs,
        cost_delay, cost_lost, net,
    )  # fmt: skip


def _base(m: Model, lam: float) -> np.ndarray:
    return np.where(m.ok, m.cost_delay + lam * m.cost_lost, math.inf)


def _succ(p: sparse.csr_matrix, x: int) -> tuple[np.ndarray, np.ndarray]:
    lo, hi = p.indptr[x], p.indptr[x + 1]
    return p.indices[lo:hi], p.data[lo:hi]


def _sweep(m: Model, base: np.ndarray, g: float, v: np.ndarray, cache: dict) -> None:
    """One Gauss-Seidel sweep in reverse time order, in place, on costs ``base - g``."""
    net = m.net
    for x in net.order:
        lvl = int(net.need[x])
        if lvl not in cache:
            inhand = m.cell >= lvl
            okx = m.ok & (inhand[None, :] | ~m.needs[:, None])
            fixed = okx & (m.ticks > 0)
            za, zd = np.nonzero(okx & (m.ticks == 0))
            cache[lvl] = (
                np.where(fixed, 0.0, math.inf),
                np.clip(m.ticks - 1, 0, 1),
                zd,
                m.d2[za, zd],
                (za, zd),
            )
        add, kidx, zd, zd2, zaz = cache[lvl]
        i1, p1 = _succ(net.p1, x)
        i2, p2 = _succ(net.p2, x)
        ev = np.stack([v[:, i1] @ p1, v[:, i2] @ p2])
        best = (base - g + add + ev[kidx, m.d2]).min(axis=0)
        if zd.size:
            zc = base[zaz] - g
            cur = best
            for _ in range(m.cell.size + 2):
                cand = np.full(cur.size, math.inf)
                np.minimum.at(cand, zd, zc + cur[zd2])
                new = np.minimum(best, cand)
                if np.array_equal(new, cur):
                    break
                cur = new
            best = cur
        v[:, x] = best


def _bellman(m: Model, base: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every move's cost from every state (A, D, N) with relative values ``v`` after it
    (inf where not allowed), and the due packet's in-hand mask (D, N)."""
    net = m.net
    ev = np.stack([v, (net.p1 @ v.T).T, (net.p2 @ v.T).T])
    q = base[:, :, None] + ev[m.ticks, m.d2, :]
    inhand = m.cell[:, None] >= net.need[None, :]
    allowed = inhand[None, :, :] | ~m.needs[:, None, None]
    return np.where(allowed, q, math.inf), inhand


def solve(
    m: Model,
    lam: float,
    v: np.ndarray | None = None,
    g: float | None = None,
    tol: float = 1e-3,
    sweeps: int = 400,
    relax: float = 0.5,
) -> tuple[float, float, np.ndarray, float]:
    """The optimal average of ``delay + lam * lost`` per block: certified lower and upper
    brackets (least and largest of ``T h - h``), the relative values ``h`` and the running
    average estimate (pass both back to warm-start a nearby ``lam``)."""
    base = _base(m, lam)
    d_n, n_n = m.cell.size, m.net.need.size
    v = np.zeros((d_n, n_n)) if v is None else v.copy()
    ref = (min(m.phase + m.block, m.dmax), int(m.net.order[-1]))
    g = float(m.phase * m.grid_ms) if g is None else float(g)
    cache: dict = {}
    lo, hi = -math.inf, math.inf
    for i in range(sweeps + 1):
        if i % 5 == 0 or i == sweeps:  # the certified brackets, which also hold g
            q, _ = _bellman(m, base, v)
            diff = q.min(axis=0) - v
            lo, hi = float(diff.min()), float(diff.max())
            if hi - lo <= tol * max(1.0, abs(lo)) or i == sweeps:
                break
        old = v.copy()
        _sweep(m, base, g, v, cache)
        if relax < 1.0:  # aperiodic: the same fixed point, smaller steps
            v *= relax
            v += (1.0 - relax) * old
        rho = (v[ref] - old[ref]) / relax
        v -= v[ref]
        g = min(max(g + rho / m.net.ticks_per_sweep, lo), hi)
    return lo, hi, v, g


@dataclass(frozen=True)
class Policy:
    """The greedy move of every (delay, network state), and the best move that does not
    need the due packet (for a replay whose state guess says it is in hand when not)."""

    move: np.ndarray  # (D, N)
    absent: np.ndarray  # (D, N)


def policy(m: Model, lam: float, v: np.ndarray) -> Policy:
    q, _ = _bellman(m, _base(m, lam), v)
    absent = np.where(m.needs[:, None, None], math.inf, q)
    return Policy(np.argmin(q, axis=0), np.argmin(absent, axis=0))


def network_state(
    m: Model, tick_ms: float, arrived: int, last_release_ms: float, packets: int
) -> int:
    """The network state a causal buffer reads at a tick (``tick_ms`` after packet 0's
    earliest arrival) from what has come: ``arrived`` packets (a FIFO prefix) and the
    release tick of the last burst among them."""
    law, net = m.law, m.net
    t_ms, p_ms = float(law.block_ms), float(law.phase_ms)
    ng, nh = net.gap_state.shape[0], net.hold_state.size
    i = int(np.clip(round((tick_ms - last_release_ms) / t_ms), 0, ng - 1))
    overdue = tick_ms - arrived * t_ms if arrived < packets else -math.inf
    if overdue >= p_ms + t_ms - 1e-6 and nh:
        return int(net.hold_state[min(round((overdue - p_ms) / t_ms), nh - 1)])
    if abs(overdue - p_ms) < 1e-6:  # this tick's packet is missing: jitter or a hold?
        if nh and i >= 1:
            h = net.gap_hazard[i - 1]
            if h * (1.0 - net.hold_zero) > (1.0 - h) * (1.0 - law.on_time):
                return int(net.hold_state[0])
        return int(net.gap_state[i, 0])
    return int(net.gap_state[i, 1])


@dataclass(frozen=True)
class Run:
    replay: jc.Replay
    decisions: int
    delay_sum_ms: float

    def average(self, lam: float) -> float:
        """The realised average of ``delay + lam * lost`` per decision (the model's)."""
        return (self.delay_sum_ms + lam * self.replay.lost) / max(1, self.decisions)


def run(m: Model, pol: Policy, delay_ms: np.ndarray, start_ms: int) -> Run:
    """Play a policy on one trace's delays (above the fastest, ms, one per packet, FIFO,
    none lost), its state read from the arrivals at each tick (:func:`network_state`)."""
    law, g, block = m.law, m.grid_ms, m.block
    x = np.asarray(delay_ms, dtype=np.float64)
    if np.isnan(x).any():
        raise ValueError("the hold model's replay takes traces without loss")
    t_ms, p_ms = float(law.block_ms), float(law.phase_ms)
    n_pk = x.size
    arrival = np.maximum.accumulate(np.arange(n_pk) * t_ms + x)
    burst = x > law.jitter_max_ms + 1e-6
    release = np.arange(n_pk) * t_ms + p_ms + t_ms * np.ceil((x - p_ms) / t_ms - 1e-9)
    first_tick = p_ms - t_ms  # the trace starts as after a release
    last_release = np.maximum.accumulate(np.where(burst, release, first_tick))
    n, d = 0, int(start_ms) // g
    delay_sum, played, lost, decisions = 0.0, 0, 0.0, 0
    guard = 4 * n_pk + 100
    while n < n_pk and guard > 0:
        guard -= 1
        decisions += 1
        lat = m.phase + block * int(m.cell[d])
        tick = n * t_ms + lat * g
        arrived = int(np.searchsorted(arrival, tick + 1e-6, side="right"))
        rel = float(last_release[arrived - 1]) if arrived else first_tick
        x_state = network_state(m, tick, arrived, rel, n_pk)
        a = int(pol.move[d, x_state])
        if m.needs[a] and arrived <= n:
            a = int(pol.absent[d, x_state])
        kind, sl = m.moves[a]
        if kind == "play":
            delay_sum += d * g
            played += 1
        lost += jc.lost_blocks(kind, sl, block)
        n, d = jc.step(kind, sl, n, d, block)
        d = min(max(d, 0), m.dmax)
    blocks = played + lost
    rp = jc.Replay(
        delay_sum / played if played else math.nan,
        100.0 * lost / blocks if blocks else 0.0,
        played,
        lost,
    )
    return Run(rp, decisions, delay_sum)


def frontier(m: Model, delay_ms: np.ndarray, lams, walks: dict | None = None) -> list[jc.Point]:
    """For every multiplier (ascending, each warm-starting the next): the certified lower
    bracket and the optimal policy replayed on the trace's delays (above the fastest),
    starting at the model's largest delay (where nothing is late). ``walks``, if given,
    gets each multiplier's :func:`gap_walk` from that delay."""
    out, v, g = [], None, None
    start = m.dmax * m.grid_ms
    for lam in sorted(float(x) for x in lams):
        lo, _, v, g = solve(m, lam, v, g)
        pol = policy(m, lam, v)
        out.append(jc.Point(lam, lo, run(m, pol, delay_ms, start).replay))
        if walks is not None:
            walks[lam] = gap_walk(m, pol, start)
    return out


def gap_walk(m: Model, pol: Policy, start_ms: int) -> np.ndarray:
    """The policy's delay (ms) at each tick after a release, along a gap in which every
    packet comes on time and no hold starts, from ``start_ms`` at the release: how it
    sheds the burst's delay and grows it again as the next hold nears."""
    net = m.net
    n_g = net.gap_state.shape[0]
    out = np.full(n_g, np.nan)
    d, i = int(start_ms) // m.grid_ms, 0
    out[0] = d * m.grid_ms
    for _ in range(8 * n_g + 64):
        if i >= n_g - 1:
            break
        a = int(pol.move[d, int(net.gap_state[i, 1])])
        k = int(m.ticks[a, d])
        d = int(m.d2[a, d])
        out[i + 1 : i + 1 + k] = d * m.grid_ms
        i += k
    return out


def describe_walk(m: Model, walk: np.ndarray) -> str:
    """In words, what :func:`gap_walk` shows the policy doing between two holds."""
    t_s = m.law.block_ms / 1000.0
    floor = float(np.nanmin(walk))
    low = np.nonzero(walk <= floor + 1e-9)[0]
    first_low, last_low = int(low[0]), int(low[-1])
    gaps = np.nonzero(m.law.gap_pmf)[0] if m.law.gap_pmf is not None else np.zeros(1, int)
    g_lo, g_hi = int(gaps.min()) + 1, int(gaps.max()) + 1  # ticks: release to E_0
    mid = (g_lo + g_hi) // 2
    return (
        f"after a burst it sheds its delay by accelerating (from {walk[0]:.0f} ms to "
        f"{floor:.0f} ms "
        f"{first_low * t_s:.1f} s after the release), and starts stretching it again "
        f"{(last_low + 1) * t_s:.1f} s after (a hold can start from {g_lo * t_s:.1f} s): "
        f"{walk[g_lo]:.0f} ms by then, {walk[mid]:.0f} ms by {mid * t_s:.1f} s, "
        f"{walk[g_hi - 1]:.0f} ms by {(g_hi - 1) * t_s:.1f} s; in a hold it stretches "
        "what it has in hand"
    )
