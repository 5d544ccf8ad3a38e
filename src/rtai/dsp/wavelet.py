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
"""

from __future__ import annotations

import functools

import numpy as np

MIN_SPLIT = 4


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


def split_int(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One reversible integer lifting level: (low, high)."""
    t = _Taps.get(x.shape[0])
    e, o = x[0::2], x[1::2]
    if not o.shape[0]:
        return e.copy(), o
    d = o - _predict_int(e, t, o.shape[0])
    return e + _update_int(d, t, e.shape[0]), d


def merge_int(s: np.ndarray, d: np.ndarray) -> np.ndarray:
    """The inverse of :func:`split_int`."""
    n = s.shape[0] + d.shape[0]
    t = _Taps.get(n)
    if d.shape[0]:
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


def split_int_pred(
    x: np.ndarray, coefs: np.ndarray, precision: int
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`split_int` with a block's own predict step: ``d[m] = odd[m] - round(sum_j
    coefs[j] e[idx[m, j]] / 2**precision)`` (:func:`pred_taps`); the same update."""
    t = _Taps.get(x.shape[0])
    e, o = x[0::2], x[1::2]
    idx = pred_taps(x.shape[0], coefs.size)
    d = o - ((e[idx] @ coefs + (1 << (precision - 1))) >> precision)
    s = e + ((d[t.u[0]] + d[t.u[1]] + 2) >> 2) if d.shape[0] else e.copy()
    return s, d


def split_int_pred_cols(
    x: np.ndarray, coefs: np.ndarray, precision: int
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`split_int_pred` of each column of x (frames, columns), column j with its
    own predict step ``coefs[:, j]`` (taps, columns): the same integers, in one pass."""
    t = _Taps.get(x.shape[0])
    e, o = x[0::2], x[1::2]
    idx = pred_taps(x.shape[0], coefs.shape[0])
    pred = np.einsum("ntc,tc->nc", e[idx], coefs)
    d = o - ((pred + (1 << (precision - 1))) >> precision)
    s = e + ((d[t.u[0]] + d[t.u[1]] + 2) >> 2) if d.shape[0] else e.copy()
    return s, d


def merge_int_pred(s: np.ndarray, d: np.ndarray, coefs: np.ndarray, precision: int) -> np.ndarray:
    """The inverse of :func:`split_int_pred`."""
    n = s.shape[0] + d.shape[0]
    t = _Taps.get(n)
    e = s - ((d[t.u[0]] + d[t.u[1]] + 2) >> 2) if d.shape[0] else s.copy()
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


def packet_forward(x: np.ndarray, depth: int, integer: bool) -> list[np.ndarray]:
    """Wavelet-packet bands of x (int64 when ``integer``), lowest frequency first."""
    if depth == 0 or x.shape[0] < MIN_SPLIT:
        return [x]
    s, d = split_int(x) if integer else split_float(x)
    high = packet_forward(d, depth - 1, integer)
    return packet_forward(s, depth - 1, integer) + high[::-1]


def packet_inverse(bands: list[np.ndarray], n: int, depth: int, integer: bool) -> np.ndarray:
    """Rebuild the n-sample sequence from :func:`packet_forward`'s bands."""
    out, rest = _inverse(list(bands), n, depth, integer)
    if rest:
        raise ValueError("more bands than the packet has")
    return out


def _inverse(bands: list[np.ndarray], n: int, depth: int, integer: bool):
    if depth == 0 or n < MIN_SPLIT:
        return bands[0], bands[1:]
    ns, nd = (n + 1) // 2, n // 2
    count_d = len(band_sizes(nd, depth - 1))
    count_s = len(band_sizes(ns, depth - 1))
    s, _ = _inverse(bands[:count_s], ns, depth - 1, integer)
    d, _ = _inverse(bands[count_s : count_s + count_d][::-1], nd, depth - 1, integer)
    merged = merge_int(s, d) if integer else merge_float(s, d)
    return merged, bands[count_s + count_d :]
