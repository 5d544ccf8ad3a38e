"""Lifting wavelet packets over one block: integer (reversible) and float (pure, NumPy).

One lifting level splits a sequence into its even and odd samples and then

* predict: ``d[m] = odd[m] - P(even)``, with the 4-tap Deslauriers-Dubuc interpolator
  ``P = (9 (e[m] + e[m+1]) - (e[m-1] + e[m+2])) / 16``;
* update: ``s[k] = even[k] + (d[k-1] + d[k]) / 4``;

giving a low band ``s`` (ceil(n/2) values) and a high band ``d`` (floor(n/2)). This is
the (9,7)-M filter pair of JPEG 2000 part 2 written as two lifting steps. Samples past
either end of the block are mirrored (whole-sample symmetric extension), so a block
needs nothing from its neighbours.

The integer form rounds each step (``>> 4``, ``>> 2``) and is exactly invertible by
running the steps backwards with the same rounding: lossless coding uses it. The
float form has no rounding and reconstructs to float precision: the perceptual codec
uses it. A packet of depth D splits every band again, D times, into up to 2**D bands
ordered from the lowest frequencies up (the high band of a split is spectrally
reversed, so children of a high band are swapped to keep the order by frequency).
Sequences shorter than 4 are not split further. Every function works along the first
axis, so (frames, channels) arrays transform all channels at once.

The integer functions take an optional :class:`Bank`: longer interpolating steps in the
same lifting form, ``d[m] = odd[m] - round(P(even))`` then ``s[k] = even[k] +
round(U(d) / 2)``, P and U the Deslauriers-Dubuc (Lagrange midpoint) interpolators of
a bank's lengths, indices clamped into the block. :data:`LONG` (the 32-point interpolator over
2**14 for both steps, 20 taps once the weights that round to zero are dropped) is what
rtai lossless uses: close to an ideal half-band split, it keeps much more of each band
out of the other than the (9,7)-M's short steps (0.2-6 % smaller lossless packets).
With a bank, sequences of any lengths laid end to end split and merge together
(:func:`split_int_ragged`, :func:`merge_int_ragged`; whole packets:
:func:`packet_forward_many`, :func:`packet_inverse_many`): the same integers as one at
a time, in a few NumPy calls for all (the channels of a block, the candidates of one).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

MIN_SPLIT = 4


def lagrange_midpoint(taps: int, shift: int) -> tuple[int, ...]:
    """Integer weights (over 2**shift, rounded) of the Lagrange interpolator at the
    midpoint of ``taps`` (even) equally spaced samples, leftmost first, without the
    outer pairs that round to zero, the middle pair corrected so that they sum to
    2**shift (a constant is predicted exactly): (-1, 9, 9, -1) over 2**4 for 4."""
    half = taps // 2
    at = np.arange(taps) - half + 0.5
    w = [np.prod([-at[i] / (at[j] - at[i]) for i in range(taps) if i != j]) for j in range(taps)]
    q = [int(v) for v in np.rint(np.array(w) * (1 << shift)).astype(np.int64)]
    while len(q) > 2 and q[0] == 0 and q[-1] == 0:
        q = q[1:-1]
    fix = ((1 << shift) - sum(q)) // 2  # (symmetric: the sum is even)
    q[len(q) // 2 - 1] += fix
    q[len(q) // 2] += fix
    return tuple(q)


@dataclass(frozen=True)
class Bank:
    """An integer lifting step pair: predict weights P (odd sample m from even samples
    m - len(P)/2 + 1 .. m + len(P)/2) and update weights U (even sample k from high-band
    values k - len(U)/2 .. k + len(U)/2 - 1), both over 2**shift; the update adds half
    of U's interpolation. Indices past either end are clamped into the half."""

    predict: tuple[int, ...]
    update: tuple[int, ...]
    shift: int

    def __post_init__(self) -> None:  # the weights as arrays, for np.correlate
        object.__setattr__(self, "_p", np.array(self.predict, dtype=np.int64))
        object.__setattr__(self, "_u", np.array(self.update, dtype=np.int64))
        object.__setattr__(self, "_ragged", {})  # _Ragged tables by lengths


LONG = Bank(lagrange_midpoint(32, 14), lagrange_midpoint(32, 14), 14)


_CLAMPED: dict[tuple[int, int, int, int], np.ndarray] = {}
_STARTS: dict[tuple[int, int, int], np.ndarray] = {}
_CACHED = 4096  # index tables kept at most (a call codes one block length: a few)


def _clamped(size: int, count: int, first: int, length: int) -> np.ndarray:
    """Indices first .. first + length + count - 2 clamped into 0..size-1 (the samples
    ``count`` taps starting at ``first`` read for ``length`` outputs); cached."""
    key = (size, count, first, length)
    idx = _CLAMPED.get(key)
    if idx is None:
        idx = np.clip(np.arange(first, first + length + count - 1), 0, size - 1)
        idx.setflags(write=False)
        if len(_CLAMPED) >= _CACHED:
            _CLAMPED.clear()
        _CLAMPED[key] = idx
    return idx


def _filter(v: np.ndarray, weights: np.ndarray, first: int, length: int) -> np.ndarray:
    """sum_j w[j] v[clamp(i + first + j)] for i = 0..length-1 along axis 0, each column
    of a 2-D v on its own (a few: one correlation each; many: one over all of them
    laid end to end)."""
    idx = _clamped(v.shape[0], weights.size, first, length)
    if v.ndim == 1:
        return np.correlate(v[idx], weights, "valid")
    rows = v.T[:, idx]  # (columns, padded length), each row contiguous
    columns, stride = rows.shape
    if columns <= 4:
        out = np.empty((columns, length), dtype=np.int64)
        for c in range(columns):
            out[c] = np.correlate(rows[c], weights, "valid")
        return out.T
    key = (columns, stride, length)
    starts = _STARTS.get(key)
    if starts is None:
        starts = np.arange(length)[:, None] + stride * np.arange(columns)[None, :]
        starts.setflags(write=False)
        if len(_STARTS) >= _CACHED:
            _STARTS.clear()
        _STARTS[key] = starts
    return np.correlate(rows.ravel(), weights, "valid")[starts]


def _bank_predict(e: np.ndarray, bank: Bank, no: int) -> np.ndarray:
    acc = _filter(e, bank._p, 1 - len(bank.predict) // 2, no)
    return (acc + (1 << (bank.shift - 1))) >> bank.shift


def _bank_update(d: np.ndarray, bank: Bank, ne: int) -> np.ndarray:
    acc = _filter(d, bank._u, -(len(bank.update) // 2), ne)
    return (acc + (1 << bank.shift)) >> (bank.shift + 1)


def _mirror(n: int, idx: np.ndarray) -> np.ndarray:
    """Whole-sample symmetric extension of indices of an n-sample sequence into 0..n-1
    (x[-i] = x[i], x[n-1+i] = x[n-1-i])."""
    idx = np.abs(idx)
    idx = np.abs(np.where(idx > n - 1, 2 * (n - 1) - idx, idx))
    return np.clip(idx, 0, max(n - 1, 0))


class _Taps:
    """Index tables for one sequence length (cached: blocks repeat their lengths).

    Taps are placed on the original sequence, extended symmetrically about its first
    and last samples, and then read from the even (``p``) or odd (``u``) half."""

    _cache: dict[int, _Taps] = {}

    def __init__(self, n: int) -> None:
        ne, no = (n + 1) // 2, n // 2
        centre = 2 * np.arange(no) + 1  # the odd sample being predicted
        self.p = [np.minimum(_mirror(n, centre + off) // 2, ne - 1) for off in (-3, -1, 1, 3)]
        centre = 2 * np.arange(ne)  # the even sample being updated
        self.u = (
            [np.clip((_mirror(n, centre + off) - 1) // 2, 0, no - 1) for off in (-1, 1)]
            if no
            else []
        )
        # The same taps as one gather and slices (integer forms): the even half extended
        # by its mirrored neighbours, p[j][m] = pe[m + j]; the odd half, u[j][k] = ue[k + j].
        self.pe = (
            np.concatenate([self.p[0][:1], self.p[1], self.p[2][-1:], self.p[3][-1:]])
            if no
            else None
        )
        self.ue = np.concatenate([self.u[0][:1], self.u[1]]) if no else None

    @classmethod
    def get(cls, n: int) -> _Taps:
        taps = cls._cache.get(n)
        if taps is None:
            taps = cls._cache[n] = _Taps(n)
        return taps


def _predict_int(e: np.ndarray, t: _Taps, no: int) -> np.ndarray:
    x = e[t.pe]
    return (9 * (x[1 : no + 1] + x[2 : no + 2]) - (x[:no] + x[3 : no + 3]) + 8) >> 4


def _update_int(d: np.ndarray, t: _Taps, ne: int) -> np.ndarray:
    x = d[t.ue]
    return (x[:ne] + x[1 : ne + 1] + 2) >> 2


def split_int(x: np.ndarray, bank: Bank | None = None) -> tuple[np.ndarray, np.ndarray]:
    """One reversible integer lifting level: (low, high); (9,7)-M or ``bank``'s steps."""
    e, o = x[0::2], x[1::2]
    if not o.shape[0]:
        return e.copy(), o
    if bank is not None:
        d = o - _bank_predict(e, bank, o.shape[0])
        return e + _bank_update(d, bank, e.shape[0]), d
    t = _Taps.get(x.shape[0])
    d = o - _predict_int(e, t, o.shape[0])
    return e + _update_int(d, t, e.shape[0]), d


def merge_int(s: np.ndarray, d: np.ndarray, bank: Bank | None = None) -> np.ndarray:
    """The inverse of :func:`split_int`."""
    n = s.shape[0] + d.shape[0]
    t = _Taps.get(n)
    if d.shape[0] and bank is not None:
        e = s - _bank_update(d, bank, s.shape[0])
        o = d + _bank_predict(e, bank, d.shape[0])
    elif d.shape[0]:
        e = s - _update_int(d, t, s.shape[0])
        o = d + _predict_int(e, t, d.shape[0])
    else:
        e, o = s.copy(), d
    x = np.empty((n,) + s.shape[1:], dtype=np.result_type(s, d))
    x[0::2], x[1::2] = e, o
    return x


@functools.lru_cache(maxsize=64)
def pred_taps(n: int, taps: int) -> np.ndarray:
    """Indices into the even half of an n-sample sequence that an adaptive predictor of
    ``taps`` taps reads for each odd sample: the taps/2 even neighbours either side
    (e[m - taps/2 + 1] .. e[m + taps/2] for odd sample m), clamped to the block."""
    ne, no = (n + 1) // 2, n // 2
    half = taps // 2
    offsets = np.arange(-half + 1, half + 1)
    index = np.clip(np.arange(no)[:, None] + offsets[None, :], 0, ne - 1)
    index.setflags(write=False)  # cached: shared by every caller
    return index


def _pred_update(e: np.ndarray, d: np.ndarray, n: int, bank: Bank | None) -> np.ndarray:
    """The update a fitted split adds to the even half: (9,7)-M's, or ``bank``'s."""
    if not d.shape[0]:
        return np.zeros_like(e)
    if bank is not None:
        return _bank_update(d, bank, e.shape[0])
    t = _Taps.get(n)
    return (d[t.u[0]] + d[t.u[1]] + 2) >> 2


def split_int_pred(
    x: np.ndarray, coefs: np.ndarray, precision: int, bank: Bank | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`split_int` with a block's own predict step: ``d[m] = odd[m] - round(sum_j
    coefs[j] e[idx[m, j]] / 2**precision)`` (:func:`pred_taps`); the same update."""
    e, o = x[0::2], x[1::2]
    idx = pred_taps(x.shape[0], coefs.size)
    d = o - ((e[idx] @ coefs + (1 << (precision - 1))) >> precision)
    return e + _pred_update(e, d, x.shape[0], bank), d


def split_int_pred_cols(
    x: np.ndarray, coefs: np.ndarray, precision: int, bank: Bank | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`split_int_pred` of each column of x (frames, columns), column j with its
    own predict step ``coefs[:, j]`` (taps, columns): the same integers, in one pass."""
    e, o = x[0::2], x[1::2]
    idx = pred_taps(x.shape[0], coefs.shape[0])
    pred = np.einsum("ntc,tc->nc", e[idx], coefs)
    d = o - ((pred + (1 << (precision - 1))) >> precision)
    return e + _pred_update(e, d, x.shape[0], bank), d


def merge_int_pred(
    s: np.ndarray, d: np.ndarray, coefs: np.ndarray, precision: int, bank: Bank | None = None
) -> np.ndarray:
    """The inverse of :func:`split_int_pred`."""
    n = s.shape[0] + d.shape[0]
    e = s - _pred_update(s, d, n, bank)
    o = d + ((e[pred_taps(n, coefs.size)] @ coefs + (1 << (precision - 1))) >> precision)
    x = np.empty(n, dtype=np.int64)
    x[0::2], x[1::2] = e, o
    return x


def split_float(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One float lifting level: (low, high), the same filters without rounding."""
    t = _Taps.get(x.shape[0])
    e, o = x[0::2], x[1::2]
    d = o - (9.0 * (e[t.p[1]] + e[t.p[2]]) - (e[t.p[0]] + e[t.p[3]])) / 16.0
    s = e + (d[t.u[0]] + d[t.u[1]]) / 4.0 if d.shape[0] else e.copy()
    return s, d


def merge_float(s: np.ndarray, d: np.ndarray) -> np.ndarray:
    """The inverse of :func:`split_float`."""
    n = s.shape[0] + d.shape[0]
    t = _Taps.get(n)
    e = s - (d[t.u[0]] + d[t.u[1]]) / 4.0 if d.shape[0] else s.copy()
    o = d + (9.0 * (e[t.p[1]] + e[t.p[2]]) - (e[t.p[0]] + e[t.p[3]])) / 16.0
    x = np.empty((n,) + s.shape[1:], dtype=np.float64)
    x[0::2], x[1::2] = e, o
    return x


def band_sizes(n: int, depth: int) -> list[int]:
    """Lengths of the packet bands of an n-sample sequence, lowest frequency first."""
    if depth == 0 or n < MIN_SPLIT:
        return [n]
    return band_sizes((n + 1) // 2, depth - 1) + band_sizes(n // 2, depth - 1)[::-1]


@functools.lru_cache(maxsize=256)
def band_starts(n: int, depth: int) -> np.ndarray:
    """Where each packet band of an n-sample sequence starts when the bands are laid end
    to end (:func:`band_sizes`), then n (read-only: cached)."""
    starts = np.concatenate([[0], np.cumsum(band_sizes(n, depth))]).astype(np.int64)
    starts.setflags(write=False)
    return starts


def packet_forward(
    x: np.ndarray, depth: int, integer: bool, bank: Bank | None = None
) -> list[np.ndarray]:
    """Wavelet-packet bands of x (int64 when ``integer``), lowest frequency first;
    ``bank``: the integer steps (:func:`split_int`)."""
    if depth == 0 or x.shape[0] < MIN_SPLIT:
        return [x]
    s, d = split_int(x, bank) if integer else split_float(x)
    high = packet_forward(d, depth - 1, integer, bank)
    return packet_forward(s, depth - 1, integer, bank) + high[::-1]


class _Ragged:
    """Index tables for splitting sequences of the given lengths (each at least 2), laid
    end to end in one array, with one bank (cached: blocks repeat their lengths). For
    each sequence, the even samples its predict taps read (clamped into its even half,
    as :func:`_filter` reads them) and the high-band values its update taps read, each
    sequence's window after the last one's, so one correlation serves them all."""

    def __init__(self, lengths: tuple[int, ...], bank: Bank) -> None:
        p_first, u_first = 1 - len(bank.predict) // 2, -(len(bank.update) // 2)
        evens, odds, p_idx, p_out, u_idx, u_out = [], [], [], [], [], []
        start = p_at = u_at = d_at = 0
        for n in lengths:
            ne, no = (n + 1) // 2, n // 2
            evens.append(start + 2 * np.arange(ne))
            odds.append(start + 2 * np.arange(no) + 1)
            p_idx.append(start + 2 * _clamped(ne, len(bank.predict), p_first, no))
            p_out.append(p_at + np.arange(no))
            p_at += p_idx[-1].size
            u_idx.append(d_at + _clamped(no, len(bank.update), u_first, ne))
            u_out.append(u_at + np.arange(ne))
            u_at += u_idx[-1].size
            start += n
            d_at += no
        self.evens, self.odds = np.concatenate(evens), np.concatenate(odds)
        self.p_idx, self.p_out = np.concatenate(p_idx), np.concatenate(p_out)
        self.u_idx, self.u_out = np.concatenate(u_idx), np.concatenate(u_out)

    @classmethod
    def get(cls, lengths: tuple[int, ...], bank: Bank) -> _Ragged:
        cache = bank._ragged
        tables = cache.get(lengths)
        if tables is None:
            if len(cache) >= _CACHED:
                cache.clear()
            tables = cache[lengths] = _Ragged(lengths, bank)
        return tables


def split_int_ragged(
    x: np.ndarray, lengths: tuple[int, ...], bank: Bank | None
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`split_int` with ``bank`` of each of the sequences of ``lengths`` (each at
    least 2) laid end to end in x (1-D): (their low bands end to end, their high bands
    end to end), the same integers as splitting each alone, in a few calls for all (one
    sequence at a time with the (9,7)-M steps, ``bank`` None)."""
    if bank is None:
        ends = np.cumsum(lengths).tolist()
        halves = [split_int(x[end - n : end]) for n, end in zip(lengths, ends, strict=True)]
        return np.concatenate([s for s, _ in halves]), np.concatenate([d for _, d in halves])
    t = _Ragged.get(lengths, bank)
    acc = np.correlate(x[t.p_idx], bank._p, "valid")[t.p_out]
    d = x[t.odds] - ((acc + (1 << (bank.shift - 1))) >> bank.shift)
    acc = np.correlate(d[t.u_idx], bank._u, "valid")[t.u_out]
    return x[t.evens] + ((acc + (1 << bank.shift)) >> (bank.shift + 1)), d


def merge_int_ragged(
    s: np.ndarray, d: np.ndarray, lengths: tuple[int, ...], bank: Bank
) -> np.ndarray:
    """The inverse of :func:`split_int_ragged`: the sequences of ``lengths`` end to end
    from their low bands end to end (s) and their high bands end to end (d)."""
    t = _Ragged.get(lengths, bank)
    acc = np.correlate(d[t.u_idx], bank._u, "valid")[t.u_out]
    x = np.empty(s.shape[0] + d.shape[0], dtype=np.int64)
    x[t.evens] = s - ((acc + (1 << bank.shift)) >> (bank.shift + 1))
    acc = np.correlate(x[t.p_idx], bank._p, "valid")[t.p_out]
    x[t.odds] = d + ((acc + (1 << (bank.shift - 1))) >> bank.shift)
    return x


class _Packets:
    """The layout of :func:`packet_forward_many` for inputs of given lengths and depths
    (cached: blocks repeat them). The inputs are laid end to end (array 0); each level
    splits the sequences that go deeper (``take``: their indices in the array before,
    None for all of it in order), and its low bands end to end, then its high bands,
    form the next array. ``bands[i]``: (array, start, stop) of each band of input i,
    in the order of :func:`packet_forward`."""

    _cache: dict[tuple, _Packets] = {}

    def __init__(self, lengths: tuple[int, ...], depths: tuple[int, ...]) -> None:
        where = {}  # node -> (array, start, stop); nodes: inputs, then each level's bands
        left, children, at = {}, {}, 0
        for i, (n, depth) in enumerate(zip(lengths, depths, strict=True)):
            where[i], left[i], at = (0, at, at + n), depth, at + n
        level = list(range(len(lengths)))
        self.levels: list[tuple[np.ndarray | None, tuple[int, ...]]] = []
        while True:
            split = [i for i in level if left[i] > 0 and where[i][2] - where[i][1] >= MIN_SPLIT]
            if not split:
                break
            spans = [where[i][1:] for i in split]
            whole = split == level and spans[0][0] == 0 and spans[-1][1] == at
            take = None if whole else np.concatenate([np.arange(a, b) for a, b in spans])
            sizes = tuple(b - a for a, b in spans)
            self.levels.append((take, sizes))
            array, at, level = len(self.levels), 0, []
            for half in (0, 1):  # the low bands, then the high bands
                for i, n in zip(split, sizes, strict=True):
                    node = len(where)
                    size = (n + 1) // 2 if half == 0 else n // 2
                    where[node], left[node], at = (array, at, at + size), left[i] - 1, at + size
                    children.setdefault(i, []).append(node)
                    level.append(node)

        def bands(i: int) -> list[tuple[int, int, int]]:
            if i not in children:
                return [where[i]]
            low, high = children[i]
            return bands(low) + bands(high)[::-1]  # as packet_forward: high bands reversed

        self.bands = [bands(i) for i in range(len(lengths))]

    @classmethod
    def get(cls, lengths: tuple[int, ...], depths: tuple[int, ...]) -> _Packets:
        key = (lengths, depths)
        layout = cls._cache.get(key)
        if layout is None:
            if len(cls._cache) >= _CACHED:
                cls._cache.clear()
            layout = cls._cache[key] = _Packets(lengths, depths)
        return layout


def packet_forward_many(xs: list[np.ndarray], depths: list[int], bank: Bank | None) -> list[list]:
    """``packet_forward(x, depth, integer=True, bank=bank)`` of each x of ``xs`` (1-D
    int64) with its depth of ``depths``: the same bands, each level's splits of every
    sequence made together (:func:`split_int_ragged`), so a few calls serve many
    sequences (e.g. the channels of a block). (The (9,7)-M steps, ``bank`` None: one
    sequence at a time.)"""
    if bank is None:
        return [packet_forward(x, d, True) for x, d in zip(xs, depths, strict=True)]
    if not xs:
        return []
    layout = _Packets.get(tuple(x.shape[0] for x in xs), tuple(depths))
    arrays = [xs[0] if len(xs) == 1 else np.concatenate(xs)]
    for take, sizes in layout.levels:
        x = arrays[-1] if take is None else arrays[-1][take]
        arrays.append(np.concatenate(split_int_ragged(x, sizes, bank)))
    return [[arrays[a][start:stop] for a, start, stop in bands] for bands in layout.bands]


def packet_inverse_many(
    joined: list[np.ndarray], lengths: list[int], depths: list[int], bank: Bank | None
) -> list[np.ndarray]:
    """:func:`packet_inverse` (integer, ``bank``) of each sequence of ``lengths`` and
    ``depths`` from its bands end to end (``joined``, as :func:`band_sizes` lays them):
    each level's merges of every sequence made together (:func:`merge_int_ragged`)."""
    if bank is None or not joined:
        return [
            packet_inverse(np.split(j, np.cumsum(band_sizes(n, d))[:-1]), n, d, True)
            for j, n, d in zip(joined, lengths, depths, strict=True)
        ]
    layout = _Packets.get(tuple(lengths), tuple(depths))
    sizes = [sum(lengths)] + [sum(split) for _, split in layout.levels]
    arrays = [np.empty(size, dtype=np.int64) for size in sizes]
    for values, bands in zip(joined, layout.bands, strict=True):
        at = 0
        for a, start, stop in bands:
            arrays[a][start:stop] = values[at : at + stop - start]
            at += stop - start
        if at != values.shape[0]:
            raise ValueError("the bands of a sequence do not fill it")
    for level in range(len(layout.levels), 0, -1):
        take, split = layout.levels[level - 1]
        low = sum((n + 1) // 2 for n in split)
        merged = merge_int_ragged(arrays[level][:low], arrays[level][low:], split, bank)
        if take is None:
            arrays[level - 1] = merged
        else:
            arrays[level - 1][take] = merged
    ends = np.cumsum(lengths).tolist()
    return [arrays[0][end - n : end] for n, end in zip(lengths, ends, strict=True)]


def packet_inverse(
    bands: list[np.ndarray], n: int, depth: int, integer: bool, bank: Bank | None = None
) -> np.ndarray:
    """Rebuild the n-sample sequence from :func:`packet_forward`'s bands."""
    out, rest = _inverse(list(bands), n, depth, integer, bank)
    if rest:
        raise ValueError("more bands than the packet has")
    return out


def _inverse(bands: list[np.ndarray], n: int, depth: int, integer: bool, bank: Bank | None):
    if depth == 0 or n < MIN_SPLIT:
        return bands[0], bands[1:]
    ns, nd = (n + 1) // 2, n // 2
    count_d = len(band_sizes(nd, depth - 1))
    count_s = len(band_sizes(ns, depth - 1))
    s, _ = _inverse(bands[:count_s], ns, depth - 1, integer, bank)
    d, _ = _inverse(bands[count_s : count_s + count_d][::-1], nd, depth - 1, integer, bank)
    merged = merge_int(s, d, bank) if integer else merge_float(s, d)
    return merged, bands[count_s + count_d :]
