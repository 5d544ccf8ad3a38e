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


def _row_filter(v: np.ndarray, weights: np.ndarray, first: int, length: int) -> np.ndarray:
    """:func:`_filter` along axis 1 of a 2-D v (each row a sequence): one correlation
    over the rows laid end to end."""
    idx = _clamped(v.shape[1], weights.size, first, length)
    padded = v[:, idx]  # (rows, padded length), C-contiguous
    rows, stride = padded.shape
    key = (-rows, stride, length)
    starts = _STARTS.get(key)
    if starts is None:
        starts = np.arange(length)[None, :] + stride * np.arange(rows)[:, None]
        starts.setflags(write=False)
        if len(_STARTS) >= _CACHED:
            _STARTS.clear()
        _STARTS[key] = starts
    return np.correlate(padded.ravel(), weights, "valid")[starts]


def split_int_rows(x: np.ndarray, bank: Bank | None) -> tuple[np.ndarray, np.ndarray]:
    """:func:`split_int` of each row of a 2-D x (rows, n): the same integers as splitting
    each row alone, cheaper than the columns of x.T for a bank's long steps."""
    if bank is None:
        s, d = split_int(x.T)
        return s.T, d.T
    e, o = x[:, 0::2], x[:, 1::2]
    if not o.shape[1]:
        return e.copy(), o
    acc = _row_filter(e, bank._p, 1 - len(bank.predict) // 2, o.shape[1])
    d = o - ((acc + (1 << (bank.shift - 1))) >> bank.shift)
    acc = _row_filter(d, bank._u, -(len(bank.update) // 2), e.shape[1])
    return e + ((acc + (1 << bank.shift)) >> (bank.shift + 1)), d


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
