"""rtai lossless, the encoder's search: which coding of a block is cheapest (pure).

:mod:`rtai.codecs.lossless` describes the coder as a whole and :mod:`rtai.codecs.lossless_format`
the fields; this module ranks the candidate codings of a block by estimates (exact Rice
costs of two parameters per partition, every candidate of a kind in one NumPy call) and
costs the best exactly, then writes the winner (:func:`encode_ints`). The constants here
are the search's own: how much it tries grows with the time a block has. They change only
the encoder's choices, never the format (bench/codecs.py and the tests flip ``FITTED``,
``LIFT_DEPTHS`` and ``CROSS_PREDICTION`` to measure what each buys). The format's switches
are read through the module (``fmt.HALF_STEPS``, ``fmt.BANK``) so that flipping them there
reaches both sides.
"""

from __future__ import annotations

import itertools

import numpy as np

from rtai.codecs import CodecError, rice
from rtai.codecs import lossless_format as fmt
from rtai.dsp import wavelet

MIN_PARTITION = 16  # values per Rice partition at least (polynomial residuals)
MIN_BAND_PART = 8  # and per part of a lifting band
STEREO_TRIES = 1  # stereo pairs costed exactly, the best by estimate first
LIFT_FRAMES = 128  # from this block length on, the lifting stage is tried (at 128 frames
# 1-2 % smaller packets than polynomial prediction alone, 10 % on tonal material)
WIDE_FRAMES = 128  # and from this one on, over the best predictor order and two below
EXACT_MARGIN = 20  # a polynomial coding is costed exactly only when its estimate is
# within this many bits of the best lifting estimate (the estimates are that close: 6-11 %
# of the coding time at 128 frames saved for < 0.01 % in size, 10 % at 480 for none)
EXACT_MARGIN_SHORT = 8  # (and below LIFT_TRIES_FRAMES: the long lifting steps of version
# 4 cost time, which this gives back at 128 frames, 5 % of a stereo block's, for 0.03 %)
LIFT_DEPTHS = fmt.LIFT_DEPTHS  # the lifting depths the encoder tries (bench/codecs.py
# empties it to measure what lifting buys)
FITTED = False  # the encoder tries the block's own predict steps (type 3): over the long
# steps of fmt.BANK they buy under 0.1 % (speech, mono, 480 frames; nothing on music) for
# twice a mono block's coding time (over the (9,7)-M steps of version 3 they bought 2-6 %)
ADAPT_FRAMES = 480  # (from this block length on, in mono blocks)
ADAPT_STEREO = False  # (and in the channels of a stereo block: 0.03 % for 40 % more time)
ADAPT_WIDE_FRAMES = 480  # the encoder tries the 12 too from this block length on
ADAPT_LEVELS = 2  # fitted predict steps down the low-band chain: up to 2 from
# THOROUGH_FRAMES on, 1 below (the packet says how many: a second fitted step is one bit)
ADAPT_ORDERS = (1, 2, 3)  # polynomial orders it is tried over (the higher ones pay on
# tonal, steeply low-pass material: 4 % smaller solo piano at 256 and 480 frames)
ADAPT_ORDERS_THOROUGH = (0, 1, 2, 3)  # and from ADAPT_ORDERS_FRAMES on
THOROUGH_FRAMES = 480  # and from this one on, more candidates of each kind (mono)
THOROUGH_TRIES = 2  # (costed exactly, of each kind)
ADAPT_TRIES = 3  # fitted-step codings costed exactly in a mono block
ADAPT_TRIES_STEREO = 2  # (and in a channel of a stereo one from THOROUGH_FRAMES on, 1 below)
LIFT_TRIES_FRAMES = 256  # from this length on, the two best lifting estimates are costed
MONO_LIFT_TRIES_FRAMES = 128  # (from this one in a mono block, which has the time for it)
ADAPT_BOTH_FRAMES = 256  # from this length on, a fitted step that wins the estimate is
# costed exactly against the best fixed-step lifting too
DEEP_FRAMES = 256  # lifting packets of depth 3 from this block length on (2 below)
DEEPEST_FRAMES = 480  # and of depth 4 from this one on (0.5 % smaller solo piano at 480
# frames; at 256 as much bigger as smaller)
ADAPT_ORDERS_FRAMES = 480  # fitted steps over ADAPT_ORDERS_THOROUGH from this length on
# (in a mono block)
ADAPT_LEVELS_FRAMES = 480  # a second fitted step from this length on
# Cross-channel prediction (stereo; the format's XPRED_* fields)
CROSS_PREDICTION = True  # (bench/codecs.py turns it off to measure what it buys)
CROSS_FITTED_FRAMES = 480  # from this length on, the residual may use fitted lifting
CROSS_LR_FRAMES = 256  # from this length on, left/right with right from left is tried too
CROSS_GATE = 16.0  # bits: see _fit_cross (3 % of a stereo block's coding time at 128
# frames saved for 0.02 % in size)


def _wasted_bits(x: np.ndarray) -> int:
    """The number of low zero bits every value shares (0 for an all-zero block)."""
    acc = int(np.bitwise_or.reduce(x)) if x.size else 0
    if acc == 0:
        return 0
    return (acc & -acc).bit_length() - 1


def _least_squares(a: np.ndarray, y: np.ndarray) -> np.ndarray | None:
    """The h minimising |a h - y| by the normal equations (small systems: much cheaper
    than an SVD), or None when they are singular (e.g. a silent block)."""
    try:
        h = np.linalg.solve(a.T @ a, a.T @ y)
    except np.linalg.LinAlgError:
        return None
    return h if np.all(np.isfinite(h)) else None


def _fit_predictor(r: np.ndarray, taps: int) -> np.ndarray | None:
    """Least-squares predict-step coefficients for the odd samples of r from their even
    neighbours, quantised; None when they do not fit the coefficient field."""
    e, o = r[0::2], r[1::2]
    a = e[wavelet.pred_taps(r.size, taps)].astype(np.float64)
    half = taps // 2
    a = a[:, half:] + a[:, half - 1 :: -1]
    h = _least_squares(a, o.astype(np.float64))
    if h is None:
        return None
    coefs = np.rint(h * (1 << fmt.ADAPT_PRECISION)).astype(np.int64) - fmt.default_sent(half)
    if rice.bit_length(rice.zigzag(coefs)) > fmt.MAX_COEF_WIDTH:
        return None
    return coefs


def _fit_predictors(cols: np.ndarray, tap_counts: tuple) -> dict[int, list]:
    """For each tap count, :func:`_fit_predictor` of each column of ``cols`` (equal
    lengths) with the bits sending it costs ((coefficients, bits) or None), every
    system solved in one batch. The pairs of neighbours of a narrower step are the
    nearest pairs of a wider one, so one product of the widest serves all."""
    widest = max(tap_counts)
    e, o = cols[0::2], cols[1::2]
    a = e[wavelet.pred_taps(cols.shape[0], widest)].astype(np.float64)  # (odd, taps, column)
    half = widest // 2
    a = np.moveaxis(a[:, half:] + a[:, half - 1 :: -1], 2, 0)  # (column, odd, pair)
    at = np.swapaxes(a, 1, 2)
    gram, rhs = at @ a, at @ o.T.astype(np.float64)[:, :, None]
    out = {}
    for taps in tap_counts:
        pairs = taps // 2
        try:
            h = np.linalg.solve(gram[:, :pairs, :pairs], rhs[:, :pairs])[:, :, 0]
        except np.linalg.LinAlgError:  # one singular system: each on its own
            fits = [_fit_predictor(cols[:, j], taps) for j in range(cols.shape[1])]
            out[taps] = [None if c is None else (c, _coef_bits(c)) for c in fits]
            continue
        h = np.where(np.isfinite(h), h, 1e9)  # (refused below: wider than the field)
        sent = np.rint(np.clip(h, -1e9, 1e9) * (1 << fmt.ADAPT_PRECISION)).astype(np.int64)
        sent -= fmt.default_sent(pairs)
        top = np.maximum(2 * sent.max(axis=1), -2 * sent.min(axis=1) - 1)  # widest zigzag
        out[taps] = [
            (row, fmt.COEF_WIDTH_BITS + pairs * wid) if wid <= fmt.MAX_COEF_WIDTH else None
            for row, wid in zip(sent, [t.bit_length() for t in top.tolist()], strict=True)
        ]
    return out


class _Channel:
    """One channel being planned (samples without their wasted bits): its polynomial
    residuals, warm-up costs, estimates and the candidate codings to cost exactly."""

    def __init__(self, x: np.ndarray, width: int, fitted: bool, mono: bool) -> None:
        n = x.size
        self.width, self.mono = width, mono
        self.diffs = diffs = [x]
        for _ in range(min(fmt.MAX_FIXED_ORDER, n - 1)):
            diffs.append(diffs[-1][1:] - diffs[-1][:-1])
        self.firsts = firsts = [int(d[0]) for d in diffs]
        self.warm_bits = [fmt.warmup_bits(firsts[:k]) for k in range(len(diffs))]
        # The search grows with the block: a short block has little time (and Python's
        # cost per NumPy call is fixed), a long one has more time and more to gain.
        thorough = n >= THOROUGH_FRAMES and mono  # (a stereo block: half the time a channel)
        self.tries = THOROUGH_TRIES if thorough else 1
        self.depths = _depths(n)
        fitted = fitted and FITTED and n >= ADAPT_FRAMES and bool(LIFT_DEPTHS)
        self.fitted = fitted and (mono or ADAPT_STEREO)
        self._polynomials: dict[int, tuple] = {}
        self.est: list[float] = []
        self.ranked: list[int] = []
        self.top = 0
        self.orders: list[int] = []
        self.m = 0
        self.lifted: list[tuple] = []

    def rank(self, est: np.ndarray) -> None:
        """Rank the polynomial orders by ``est`` (:func:`_order_estimates` of the
        channel) and choose the orders whose residuals the lifting estimates split."""
        n = self.diffs[0].size
        self.est = est = (est + self.warm_bits).tolist()
        self.ranked = ranked = np.argsort(est)[: self.tries].tolist()
        if self.depths:
            self.top = ranked[0]  # costed exactly below, unless lifting clearly wins
        else:
            self.top = min((self.polynomial(k) for k in ranked), key=lambda c: c[0])[1]
        # Lifting estimates for the best order and the two below it, all at once
        # (:func:`_lift_estimates`): the residuals, cut to a common length m (a multiple
        # of 2**depth, so every band of a depth has one length), split together.
        below = 2 if n >= WIDE_FRAMES else 0
        top = self.top
        self.orders = sorted({max(top - j, 0) for j in range(below + 1)}) if self.depths else []
        self.m = (n - max(self.orders, default=0)) & -(1 << max(self.depths, default=0))

    def polynomial(self, k: int) -> tuple:
        """The exact coding of the order-k residual (computed once)."""
        out = self._polynomials.get(k)
        if out is None:
            plan = rice.Plan(self.diffs[k], min_partition=MIN_PARTITION, half=fmt.HALF_STEPS)
            out = (plan.bits + self.warm_bits[k], k, 0, plan, _warm(self.firsts, k), None)
            self._polynomials[k] = out
        return out

    def steps(self) -> list[tuple]:
        """The codings to cost exactly, in order (the first of equal costs wins):
        ("poly", order), ("lift", order, depth) and ("adapt", guess of
        :func:`_adaptive_guesses`). The best estimate is costed exactly, and the
        polynomial coding unless lifting clearly beats it (by EXACT_MARGIN bits:
        estimates are that good)."""
        n, est, top, lifted = self.diffs[0].size, self.est, self.top, self.lifted
        guesses = _adaptive_guesses(self.diffs, self.warm_bits, self.mono) if self.fitted else []
        adapt = guesses[0] if guesses else None
        out: list[tuple] = [] if self.depths else [("poly", k) for k in self.ranked]
        if self.tries == 1:
            if adapt is not None and adapt[0] < min([est[top]] + [g for g, _, _ in lifted[:1]]):
                if adapt[0] >= est[top] - EXACT_MARGIN:
                    out.append(("poly", top))
                if n >= ADAPT_BOTH_FRAMES and lifted and lifted[0][0] < adapt[0] + EXACT_MARGIN:
                    out.append(("lift", lifted[0][1], lifted[0][2]))
                adapt_tries = (
                    ADAPT_TRIES if self.mono else ADAPT_TRIES_STEREO if n >= THOROUGH_FRAMES else 1
                )
                return out + [("adapt", guess) for guess in guesses[:adapt_tries]]
            mono = self.mono
            lift_tries = 2 if n >= (MONO_LIFT_TRIES_FRAMES if mono else LIFT_TRIES_FRAMES) else 1
            lifted = [c for c in lifted[:lift_tries] if c[0] < est[top]]
            margin = EXACT_MARGIN if n >= LIFT_TRIES_FRAMES else EXACT_MARGIN_SHORT
            if not lifted or lifted[0][0] >= est[top] - margin:
                out.append(("poly", top))
        else:  # the polynomial codings whose estimates come within EXACT_MARGIN of the others
            guess = min([g for g, _, _ in lifted[:1]] + [g[0] for g in guesses[:1]], default=1e30)
            out += [("poly", k) for k in self.ranked if est[k] < guess + EXACT_MARGIN]
        out += [("lift", k, depth) for _, k, depth in lifted[: max(self.tries, 2)]]
        if self.tries > 1 and adapt is not None:
            if adapt[0] < min([est[top]] + [g for g, _, _ in lifted[:1]]):
                out += [("adapt", guess) for guess in guesses[:ADAPT_TRIES]]
        return out


def _plan_channels(chans: list[tuple], mono: bool = False) -> list[tuple]:
    """The cheapest coding of each (samples without their wasted bits, ``width``,
    fitted, est) of ``chans``, channels of one block: (bits, order, lift depth, plan,
    warm-up, fitted predict steps (a list) or None).

    Candidates are ranked by quick estimates (every polynomial order; the lifting
    packet at each depth over the residual of the best order and the two below), and
    the best of each kind is then costed exactly; ``fitted`` allows the fitted lifting
    step (from ADAPT_FRAMES); ``est``: :func:`_order_estimates` of the samples, if made
    already (else None). The channels' estimates and lifting splits are made together
    (NumPy calls over all of them at once); each channel's plan is the one it gets alone."""
    chs = [_Channel(x, width, fitted, mono) for x, width, fitted, _ in chans]
    missing = [i for i, c in enumerate(chans) if c[3] is None]
    table = _order_estimates(np.stack([chans[i][0] for i in missing])) if missing else None
    for i, (ch, c) in enumerate(zip(chs, chans, strict=True)):
        ch.rank(table[:, missing.index(i)] if c[3] is None else c[3])
    _lift_estimates(chs)
    steps = [ch.steps() for ch in chs]
    # Every lifting coding to cost, of every channel: their packets in one batch.
    lifts = [
        (ch, s[1], s[2])
        for ch, chosen in zip(chs, steps, strict=True)
        for s in chosen
        if s[0] == "lift"
    ]
    packets = wavelet.packet_forward_many(
        [ch.diffs[k] for ch, k, _ in lifts], [depth for _, _, depth in lifts], fmt.BANK
    )
    lifted = {
        (id(ch), k, depth): bands for (ch, k, depth), bands in zip(lifts, packets, strict=True)
    }
    out = []
    for ch, chosen in zip(chs, steps, strict=True):
        best = None
        for step in chosen:
            if step[0] == "adapt":
                best = _cost_adaptive(ch.diffs, ch.warm_bits, ch.firsts, ch.width, best, step[1])
                continue
            if step[0] == "poly":
                cand = ch.polynomial(step[1])
            else:
                cand = _cost_lifting(ch, step[1], step[2], lifted[(id(ch), step[1], step[2])])
            if best is None or cand[0] < best[0]:
                best = cand
        out.append(best if best is not None else ch.polynomial(ch.top))
    return out


def _cost_lifting(ch: _Channel, k: int, depth: int, bands: list[np.ndarray]) -> tuple:
    """The exact coding of the lifting packet ``bands`` (depth ``depth``) of ``ch``'s
    order-k residual."""
    base = wavelet.band_starts(ch.diffs[k].size, depth)
    plan = rice.BoundsPlan(np.concatenate(bands), base, MIN_BAND_PART, half=fmt.HALF_STEPS)
    bits = plan.bits + ch.warm_bits[k] + fmt.LIFT_BITS
    return (bits, k, depth, plan, _warm(ch.firsts, k), None)


def _lift_estimates(chs: list[_Channel]) -> None:
    """Set each channel's ``lifted``: (estimated bits, order, depth) of the lifting
    packet at each depth over the residuals of its ``orders`` (cut to its length ``m``),
    cheapest first. Channels of one block (one set of depths): every residual of every
    channel is split at once, depth by depth (:func:`wavelet.split_int_ragged`), and
    every band estimated in one call."""
    total = sum(len(ch.orders) for ch in chs)
    if not total:
        return
    depths = next(ch.depths for ch in chs if ch.orders)
    # The rows (a residual each) end to end; row_m: the length m of each row's channel.
    x = np.concatenate([ch.diffs[k][ch.diffs[k].size - ch.m :] for ch in chs for k in ch.orders])
    row_m = [ch.m for ch in chs for _ in ch.orders]
    lengths = tuple(row_m)
    owners = np.arange(total)
    flats, sizes, tags, levels = [], [], [], {}  # levels: depths made, by m
    for depth in depths:
        keep = [j for j, m in enumerate(row_m) if m >= wavelet.MIN_SPLIT << depth]
        if not keep:
            break
        if len(keep) < len(row_m):  # (channels too short for this depth stop here)
            ends = np.cumsum(lengths).tolist()
            x = np.concatenate([x[ends[j] - lengths[j] : ends[j]] for j in keep])
            lengths = tuple(lengths[j] for j in keep)
            row_m, owners = [row_m[j] for j in keep], owners[keep]
        low, high = wavelet.split_int_ragged(x, lengths, fmt.BANK)
        x = np.concatenate([low, high])  # the low bands, then the high ones
        lengths = tuple((n + 1) // 2 for n in lengths) + tuple(n // 2 for n in lengths)
        row_m, owners = row_m + row_m, np.concatenate([owners, owners])
        flats.append(x)
        sizes += lengths
        tags.append(owners + depth * total)
        for m in set(row_m):
            levels[m] = levels.get(m, 0) + 1
    if not flats:
        return
    bounds = np.array([0, *itertools.accumulate(sizes)], dtype=np.int64)
    costs = rice.estimate_parts(rice.zigzag(np.concatenate(flats))[None, :], bounds)[0]
    sums = np.bincount(np.concatenate(tags), costs, (max(levels.values()) + 1) * total)
    first = 0
    for ch in chs:
        n, m, lifted = ch.diffs[0].size, ch.m, []
        count = levels.get(m, 0) if ch.orders else 0
        for depth in range(1, count + 1):
            lifted += [(float(sums[depth * total + first + i]) * (n - k) / m + ch.warm_bits[k], k,
                        depth) for i, k in enumerate(ch.orders)]  # fmt: skip
        lifted.sort()
        ch.lifted = lifted
        first += len(ch.orders)


def _adaptive_guesses(diffs: list, warm_bits: list, mono: bool) -> list[tuple]:
    """The best estimates (bits, order, depth, fitted steps, their bits), best first, of
    the codings
    whose first lifting split (or first two, down the low-band chain) predicts with the
    block's own least-squares filter: polynomial orders ADAPT_ORDERS (more from
    THOROUGH_FRAMES), depths of :func:`_depths`; none when no such coding fits."""
    n = diffs[0].size
    orders = ADAPT_ORDERS_THOROUGH if n >= ADAPT_ORDERS_FRAMES and mono else ADAPT_ORDERS
    orders = [k for k in orders if k < len(diffs)]
    max_levels = ADAPT_LEVELS if n >= ADAPT_LEVELS_FRAMES else 1
    tap_counts = fmt.ADAPT_TAPS if n >= ADAPT_WIDE_FRAMES else fmt.ADAPT_TAPS[:1]
    depths = _depths(n)
    top = max(depths, default=0)
    m = (n - max(orders, default=n)) & -(1 << top)  # estimates: equal bands, see above
    if m < wavelet.MIN_SPLIT << top:
        return []
    # Groups: (order, fitted steps, their bits); columns: equal-length bands, each
    # owned by a group. Depth 1: the fitted split of each order's residual; each next
    # depth splits every band with fixed steps, and for a second fitted step (a new
    # group) the first split's low band with its own fit instead.
    groups, cols = [], []
    ends = np.stack([diffs[k][diffs[k].size - m :] for k in orders], axis=1)
    fits = _fit_predictors(ends, tap_counts)
    for taps in tap_counts:  # each order's residual split by its own fit, all at once
        which = [j for j, fit in enumerate(fits[taps]) if fit is not None]
        if not which:
            continue
        groups += [(orders[j], [fits[taps][j][0]], fits[taps][j][1]) for j in which]
        taps_cols = np.stack([fmt.predict_taps(fits[taps][j][0]) for j in which], axis=1)
        s1, d1 = wavelet.split_int_pred_cols(
            ends[:, which], taps_cols, fmt.ADAPT_PRECISION, fmt.BANK
        )
        cols.append(np.stack([s1, d1], axis=2).reshape(s1.shape[0], 2 * len(which)))
    if not groups:
        return []
    firsts = len(groups)
    mat = np.concatenate(cols, axis=1)  # group g's low and high bands: columns 2g, 2g + 1
    owners = np.repeat(np.arange(firsts), 2)
    mats, tags = [], []
    for depth in depths:
        if depth > 1:
            low, high = wavelet.split_int(mat, fmt.BANK)
            split_mat = np.concatenate([low, high], axis=1)
            owners = np.concatenate([owners, owners])
            if depth == 2 and max_levels > 1:
                extra_cols = []
                # each first step's low band, with as many taps as the first step
                fits = _fit_predictors(mat[:, 0 : 2 * firsts : 2], tap_counts)
                split2 = {}
                for taps in tap_counts:  # the low bands split by their fits, all at once
                    which = [
                        g
                        for g in range(firsts)
                        if groups[g][1][0].size == taps // 2 and fits[taps][g] is not None
                    ]
                    if which:
                        taps_cols = np.stack(
                            [fmt.predict_taps(fits[taps][g][0]) for g in which], axis=1
                        )
                        lows = mat[:, [2 * g for g in which]]
                        s2, d2 = wavelet.split_int_pred_cols(
                            lows, taps_cols, fmt.ADAPT_PRECISION, fmt.BANK
                        )
                        split2.update((g, (s2[:, i], d2[:, i])) for i, g in enumerate(which))
                for g in sorted(split2):
                    k, coefs, bits = groups[g]
                    c, c_bits = fits[2 * coefs[0].size][g]
                    groups.append((k, coefs + [c], bits + c_bits))
                    extra_cols += [*split2[g], low[:, 2 * g + 1], high[:, 2 * g + 1]]
                if extra_cols:
                    split_mat = np.concatenate([split_mat, np.stack(extra_cols, axis=1)], axis=1)
                    added = np.repeat(np.arange(firsts, len(groups)), 4)
                    owners = np.concatenate([owners, added])
            mat = split_mat
        mats.append(mat)
        tags.append(owners + (depth - 1) * 2 * firsts)  # groups: at most 2 * firsts
    sums = np.bincount(np.concatenate(tags), _column_costs(mats), len(mats) * 2 * firsts)
    guesses = []
    for d, depth in enumerate(depths[: len(mats)]):
        for g, (k, coefs, bits) in enumerate(groups):
            if depth > 1 or g < firsts:  # second fitted steps exist from depth 2 on
                cost = float(sums[d * 2 * firsts + g]) * (n - k) / m + warm_bits[k] + bits
                guesses.append((cost, k, depth, coefs, bits))
    guesses.sort(key=lambda g: g[0])
    return guesses


def _depths(n: int) -> tuple[int, ...]:
    """The lifting packet depths the encoder tries on a block of n frames."""
    top = 4 if n >= DEEPEST_FRAMES else 3 if n >= DEEP_FRAMES else 2 if n >= LIFT_FRAMES else 0
    return tuple(d for d in LIFT_DEPTHS if d <= top)


def _warm(firsts: list[int], order: int) -> np.ndarray:
    """The warm-up values of a polynomial order: the first ``order`` of ``firsts``."""
    return np.array(firsts[:order], dtype=np.int64)


def _cost_adaptive(diffs, warm_bits, firsts, width, best, guess) -> tuple | None:
    """``best``, or the fitted-lifting coding ``guess`` when it is cheaper (or ``best``
    is None)."""
    _, k, depth, coefs, extra = guess
    bands = fmt.adaptive_bands(diffs[k], coefs, depth)
    if bands is None:
        return best
    joined = np.concatenate(bands)
    if rice.bit_length(rice.zigzag(joined)) > fmt.band_width(width, k, depth):
        return best  # the decoder would refuse values this wide
    base = np.concatenate([[0], np.cumsum([b.size for b in bands])])
    plan = rice.BoundsPlan(joined, base, MIN_BAND_PART, half=fmt.HALF_STEPS)
    bits = plan.bits + warm_bits[k] + fmt.LIFT_BITS + (depth > 1) + 1 + extra
    if best is not None and bits >= best[0]:
        return best
    return (bits, k, depth, plan, _warm(firsts, k), coefs)


def _coef_bits(c: np.ndarray) -> int:
    """Bits of one sent set of fitted coefficients (width field and values)."""
    return fmt.COEF_WIDTH_BITS + c.size * rice.bit_length(rice.zigzag(c))


def _column_costs(mats: list[np.ndarray]) -> np.ndarray:
    """Estimated bits of each column of each matrix (one Rice parameter each), in one
    call: all columns laid end to end as the partitions of one row."""
    flat = np.concatenate([mat.T.ravel() for mat in mats])
    lengths = np.concatenate([np.full(mat.shape[1], mat.shape[0]) for mat in mats])
    bounds = np.concatenate([[0], np.cumsum(lengths)])
    return rice.estimate_parts(rice.zigzag(flat)[None, :], bounds)[0]


def _order_estimates(rows: np.ndarray) -> np.ndarray:
    """Estimated Rice bits (orders, rows) of each polynomial order's residual of each
    row, over the last n - 4 values (warm-up not counted), all in one call."""
    n = rows.shape[1]
    top = min(fmt.MAX_FIXED_ORDER, n - 1)
    bounds = rice.partition_bounds(n - top, 3 if n - top >= 64 else 0)
    d, cut = rows, [rows[:, n - bounds[-1] :]]
    for _ in range(top):
        d = d[:, 1:] - d[:, :-1]
        cut.append(d[:, d.shape[1] - bounds[-1] :])
    est = rice.estimate_rows(rice.zigzag(np.concatenate(cut)), bounds)
    return est.reshape(top + 1, rows.shape[0])


def _plan_coded(
    x: np.ndarray,
    width: int,
    fitted: bool = True,
    est: np.ndarray | None = None,
    mono: bool = False,
) -> tuple:
    """(bits, plan) of one coded channel; the plan is what
    :func:`lossless_format.write_channel` writes.
    ``est``: :func:`_order_estimates` of x without its wasted bits, if already made;
    ``mono``: the block's only channel (it has twice a stereo channel's time)."""
    return _plan_coded_many([(x, width, fitted, est)], mono)[0]


def _plan_coded_many(jobs: list[tuple], mono: bool = False) -> list[tuple]:
    """:func:`_plan_coded` of each (x, width, fitted, est) of ``jobs``, channels of one
    block (equal lengths), planned together (:func:`_plan_channels`)."""
    out: list = [None] * len(jobs)
    coded, shifts, where = [], [], []
    for i, (x, width, fitted, est) in enumerate(jobs):
        if np.all(x == x[0]):
            out[i] = (fmt.TYPE_BITS, (fmt.CONSTANT, int(x[0])))
            continue
        shift = _wasted_bits(x)
        coded.append((x >> shift, width - shift, fitted, est))
        shifts.append(shift)
        where.append(i)
    planned = _plan_channels(coded, mono) if coded else []
    for i, shift, (bits, order, depth, plan, warm, coefs) in zip(
        where, shifts, planned, strict=True
    ):
        bits += fmt.TYPE_BITS + fmt.shift_bits(shift) + fmt.ORDER_BITS
        out[i] = (bits, (fmt.FIXED, shift, order, depth, plan, warm, coefs))
    return out


def _fit_cross(a: np.ndarray, b: np.ndarray) -> np.ndarray | None:
    """Quantised least-squares coefficients predicting b from a (their first
    differences, so that low frequencies do not dominate the fit); None when they
    are all zero or do not fit their field, or when the fit takes out too little of
    b's energy to pay for them (a Gaussian's bits fall by half the log2 of the energy
    ratio per value: under CROSS_GATE bits in all, the block is not tried further)."""
    da, db = a[1:] - a[:-1], b[1:] - b[:-1]
    m = fmt.XPRED_REACH
    rows = da.size - 2 * m
    if rows < 4 * fmt.XPRED_TAPS:
        return None
    lagged = np.stack([da[j : j + rows] for j in range(fmt.XPRED_TAPS)]).astype(np.float64)
    y = db[m : m + rows].astype(np.float64)
    h = _least_squares(lagged.T, y)
    if h is None:
        return None
    energy = float(y @ y)
    left = y - h @ lagged
    if 0.5 * rows * np.log2((energy + 1.0) / (float(left @ left) + 1.0)) < CROSS_GATE:
        return None
    coefs = np.rint(h * (1 << fmt.XPRED_PRECISION)).astype(np.int64)
    if not coefs.any() or fmt.zigzags(coefs)[1] > fmt.MAX_XPRED_COEF_WIDTH:
        return None
    return coefs


def _cross_candidate(a: np.ndarray, b: np.ndarray) -> tuple | None:
    """(estimated bits saved on b, shift, coefficients, residual, their bits, residual
    estimates) of coding b as its difference from a prediction from a, when the estimate
    saves bits; else None. The prediction works above the low zero bits both channels
    share (``shift``). The residual estimates (:func:`_order_estimates` of the residual
    without its wasted bits) are None when the residual has low zero bits of its own."""
    shift = _wasted_bits(a | b)
    sa, sb = a >> shift, b >> shift
    coefs = _fit_cross(sa, sb)
    if coefs is None:
        return None
    r = sb - fmt.cross_pred(sa, coefs)
    extra = (
        fmt.shift_bits(shift) + fmt.XPRED_COEF_WIDTH_BITS + fmt.XPRED_TAPS * fmt.zigzags(coefs)[1]
    )
    table = _order_estimates(np.stack([sb, r]))
    est = table.min(axis=0)
    saved = float(est[0] - est[1] - extra)
    if saved <= 0:
        return None
    # (r << shift without its wasted bits is r when r has an odd value: its plan's own)
    return saved, shift, coefs, r << shift, extra, table[:, 1] if (r & 1).any() else None


def _cross_pick(cands: dict, cost: dict, mode: int) -> tuple | None:
    """(pair mode, :func:`_cross_candidate`) of the cross-channel prediction worth
    costing exactly in a stereo block whose chosen pair is ``mode``: the pair's second
    channel predicted from its first, or right predicted from left when the estimates
    say that beats both (a filtered copy of one channel in the other, which no sum or
    difference takes out); None when no prediction saves bits by estimate."""
    frames = cands["L"].size
    tries = (
        [mode] if mode == fmt.INDEPENDENT or frames < CROSS_LR_FRAMES else [mode, fmt.INDEPENDENT]
    )
    found = []
    for m in tries:
        first, second = fmt.STEREO_PAIRS[m]
        cand = _cross_candidate(cands[first], cands[second])
        if cand is not None:
            found.append((cost[first] + cost[second] - cand[0], m, cand))
    chosen = cost[fmt.STEREO_PAIRS[mode][0]] + cost[fmt.STEREO_PAIRS[mode][1]]
    found = [f for f in found if f[1] == mode or f[0] < chosen]
    if not found:
        return None
    _, m, cand = min(found, key=lambda f: f[0])  # (the first of equal estimates)
    return m, cand


def _plan_stereo(
    cands: dict, widths: dict, column: dict, names: list, pick: tuple | None, plans: dict
) -> dict:
    """``plans`` (exact plans by channel name) with those of the channels ``names``
    and, for the cross-channel prediction ``pick`` (:func:`_cross_pick`), of its first
    channel and its residual (as "X"), all planned together (:func:`_plan_coded_many`).
    ``column``: each channel's :func:`_order_estimates`."""
    jobs = {c: (cands[c], widths[c], True, column[c]) for c in names if c not in plans}
    if pick is not None:
        m, (_, _, _, r, _, est) = pick
        first, second = fmt.STEREO_PAIRS[m]
        if first not in plans:
            jobs.setdefault(first, (cands[first], widths[first], True, column[first]))
        fitted = r.size >= CROSS_FITTED_FRAMES  # the fitted lifting step for r too
        jobs["X"] = (r, fmt.cross_width(widths[first], widths[second]), fitted, est)
    plans.update(zip(jobs, _plan_coded_many(list(jobs.values())), strict=True))
    return plans


def _choose_cross(plans: dict, mode: int, pick: tuple | None) -> tuple:
    """(mode, cross plan or None): the chosen pair ``mode`` as it is, or the cross-channel
    prediction ``pick`` when its exact plans (:func:`_plan_stereo`) cost less."""
    first, second = fmt.STEREO_PAIRS[mode]
    best = (plans[first][0] + plans[second][0], mode, None)
    if pick is not None:
        m, (_, shift, coefs, _, extra, _) = pick
        bits, planned = plans["X"]
        total = plans[fmt.STEREO_PAIRS[m][0]][0] + bits + extra
        if total < best[0]:
            best = (total, m, (planned, shift, coefs))
    return best[1], best[2]


def encode_ints(x: np.ndarray, depth: int) -> bytes:
    """One block of ``depth``-bit signed integers shaped (frames, channels) -> payload."""
    if depth not in fmt.DEPTHS:
        raise CodecError(f"lossless codes 16 or 24-bit samples, not {depth}")
    x = np.asarray(x, dtype=np.int64)
    if x.ndim != 2 or x.shape[1] not in (1, 2) or x.shape[0] < 1:
        raise CodecError(f"lossless block shape {x.shape}: expected (frames, 1 or 2)")
    frames, channels = x.shape
    lo, hi = -(1 << (depth - 1)), (1 << (depth - 1)) - 1
    if x.size and (int(x.min()) < lo or int(x.max()) > hi):
        raise CodecError(f"lossless samples outside the {depth}-bit range")
    w = rice.BitWriter()
    if channels == 2:
        # Each candidate channel's cost is estimated from its best polynomial residual;
        # the two cheapest pairs by that estimate are planned exactly (three channels at
        # most: pairs share one) and the cheaper is coded.
        left, right = x[:, 0], x[:, 1]
        cands = {"L": left, "R": right, "M": (left + right) >> 1, "S": left - right}
        widths = {"L": depth, "R": depth, "M": depth, "S": depth + 1}
        # Estimated without each channel's wasted bits (the trailing zeros of the or of
        # its values, as _wasted_bits), as it is coded: the estimates of every order
        # are reused by the channels' plans.
        rows = np.stack(list(cands.values()))
        ors = np.bitwise_or.reduce(rows, axis=1).tolist()
        rows >>= np.array([(v & -v).bit_length() - 1 if v else 0 for v in ors])[:, None]
        table = _order_estimates(rows)
        column = dict(zip(cands, table.T, strict=True))
        cost = dict(zip(cands, table.min(axis=0).tolist(), strict=True))
        pairs = fmt.STEREO_PAIRS
        ranked = sorted(pairs, key=lambda m: cost[pairs[m][0]] + cost[pairs[m][1]])[:STEREO_TRIES]
        names = [c for m in ranked for c in pairs[m]]
        # With one pair ranked, the pair is known before any exact plan: its channels
        # and the cross-channel prediction to try are planned together.
        known = CROSS_PREDICTION and len(ranked) == 1
        pick = _cross_pick(cands, cost, ranked[0]) if known else None
        plans = _plan_stereo(cands, widths, column, names, pick, {})
        mode = min(ranked, key=lambda m: plans[pairs[m][0]][0] + plans[pairs[m][1]][0])
        if CROSS_PREDICTION and not known:
            pick = _cross_pick(cands, cost, mode)
            plans = _plan_stereo(cands, widths, column, [], pick, plans)
        mode, cross = _choose_cross(plans, mode, pick)
        first, second = pairs[mode]
        w.write(fmt.header_byte(depth, mode, False, channels, cross is not None), 8)
        fmt.write_channel(w, plans[first][1], widths[first])
        if cross is None:
            fmt.write_channel(w, plans[second][1], widths[second])
        else:
            planned, shift, coefs = cross
            fmt.write_shift(w, shift)
            fmt.write_few(w, coefs, fmt.XPRED_COEF_WIDTH_BITS)
            fmt.write_channel(w, planned, fmt.cross_width(widths[first], widths[second]))
    else:
        w.write(fmt.header_byte(depth, fmt.INDEPENDENT, False, channels), 8)
        fmt.write_channel(w, _plan_coded(x[:, 0], depth, mono=True)[1], depth)
    verbatim_bits = 8 + frames * channels * depth
    if w.bits <= verbatim_bits:
        return w.to_bytes()
    v = rice.BitWriter()
    v.write(fmt.header_byte(depth, fmt.INDEPENDENT, True, channels), 8)
    v.write_array(x.ravel() & ((1 << depth) - 1), depth)
    return v.to_bytes()
