"""Partitioned adaptive Rice coding and vectorised bit packing (pure, NumPy only).

Shared by the lossless and perceptual codecs. A sequence of signed integers is
mapped to unsigned ones by the zigzag map (0, -1, 1, -2 ... -> 0, 1, 2, 3 ...),
cut into ``2**order`` near-equal partitions, and each partition gets the Rice
parameter ``k`` that codes it in the fewest bits (or an escape to fixed-width
values when that is cheaper, e.g. white noise or a lone outlier).

A Rice code of ``u`` with parameter ``k`` is the quotient ``u >> k`` in unary and
the ``k`` low bits of ``u``. Written code after code, the decoder would have to walk
the stream one code at a time (each code's length depends on the last), which in
Python means a loop over samples. So the layout splits the two parts:

    order:3  parameters: the first k in 5 bits, each next one as the zigzagged
             difference from the one before in unary; k = 31 (escape) is followed
             by width:5
    low bits of every sample (k bits each, or ``width`` for an escaped partition)
    unary quotients of the non-escaped samples: q zeros then a one, back to back

The low bits have widths the decoder knows from the parameters, so they unpack in
one gather; the unary section ends at its n-th one bit, so ``flatnonzero`` finds
every quotient at once. Bits are written most significant first.

Half steps (``half=True``, rtai lossless): a Rice code's lengths grow linearly with
``u``, a fit to a Laplacian; prediction residuals of noisy audio are closer to
Gaussian (flatter near zero), which costs Rice about 0.1 bit a value over their
entropy. A parameter ``p = 2k + 1`` doubles the first bucket of parameter k: values
below ``2**(k+1)`` cost ``k + 2`` bits (quotient 0, k + 1 low bits), larger ones
quotient ``(u >> k) - 1`` and k low bits, between k and k + 1 in shape. Parameters
then count in half steps (``p = 2k`` is plain Rice): the first in 6 bits, 63 the
escape. A value's low-bit width now depends on its quotient, so the quotients come
first and the low bits after them::

    order:3  parameters: the first p in 6 bits, the others as above; p = 63 is the
             escape (width:5 follows)
    unary quotients of the non-escaped samples
    low bits of every sample

The plans of half-step sequences count their parameter bits exactly, so their
``bits`` are what :func:`write` writes (whole steps count PARAM_COST a parameter).
"""

from __future__ import annotations

import numpy as np

from rtai.codecs import CodecError

ORDER_BITS = 3
MAX_ORDER = (1 << ORDER_BITS) - 1
PARAM_BITS = 5  # the first partition's parameter; the others differ from the last
ESCAPE = (1 << PARAM_BITS) - 1  # a parameter value meaning "fixed width follows"
PARAM_COST = 3.0  # what choosing a partition plans for its parameter, in bits
MAX_K = ESCAPE - 1  # 30
WIDTH_BITS = 5  # escape width 0..31 bits
K_RANGE = (2, 2)  # parameters tried: log2 of the smallest partition mean (of 16 values)
# minus the first to log2 of the largest plus the second (each k with its half step)
K_RANGE_HALF = (1, 1)  # (the best k sits near log2(0.69 mean): no loss measured on the
# bench/codecs.py material, 2 % less lossless coding time)
# Half-step parameters (``half=True``): p = 2k + s, s = 1 doubling the first bucket.
HALF_PARAM_BITS = 6
HALF_ESCAPE = (1 << HALF_PARAM_BITS) - 1  # 63
MAX_HALF = 2 * MAX_K + 1  # 61


def zigzag(x: np.ndarray) -> np.ndarray:
    """Signed int64 -> unsigned int64: 0, -1, 1, -2, 2 ... -> 0, 1, 2, 3, 4 ..."""
    x = np.asarray(x, dtype=np.int64)
    return ((x << 1) ^ (x >> 63)).view(np.uint64)


def unzigzag(u: np.ndarray) -> np.ndarray:
    """The inverse of :func:`zigzag`."""
    u = np.asarray(u, dtype=np.uint64)
    return ((u >> np.uint64(1)).astype(np.int64)) ^ -((u & np.uint64(1)).astype(np.int64))


def bit_length(u: np.ndarray | int) -> int:
    """Bits needed for the largest value of ``u`` (0 for all zeros)."""
    top = int(np.max(u)) if np.size(u) else 0
    return top.bit_length()


def partition_bounds(n: int, order: int) -> np.ndarray:
    """Start indices of the ``2**order`` near-equal partitions of n values, plus n."""
    parts = 1 << order
    return (np.arange(parts + 1, dtype=np.int64) * n) // parts


class BitWriter:
    """Collects fields (value, width) and packs them all at once."""

    def __init__(self) -> None:
        self._values: list[np.ndarray] = []
        self._widths: list[np.ndarray] = []
        self._pending_values: list[int] = []  # scalar fields since the last array
        self._pending_widths: list[int] = []
        self._bits = 0  # the bits of the fields written, but those of _uncounted
        self._uncounted: list[np.ndarray] = []  # width arrays (summed when asked: once)

    @property
    def bits(self) -> int:
        """The bits written so far."""
        if self._uncounted:
            self._bits += int(np.concatenate(self._uncounted).sum())
            self._uncounted = []
        return self._bits

    def write(self, value: int, width: int) -> None:
        """One unsigned field; ``value`` must fit in ``width`` bits."""
        self._pending_values.append(value)
        self._pending_widths.append(width)
        self._bits += width

    def write_signed(self, value: int, width: int) -> None:
        """One two's-complement field of ``width`` bits."""
        self.write(value & ((1 << width) - 1), width)

    def _flush(self) -> None:
        if self._pending_values:
            self._values.append(np.array(self._pending_values, dtype=np.uint64))
            self._widths.append(np.array(self._pending_widths, dtype=np.int64))
            self._pending_values, self._pending_widths = [], []

    def write_array(self, values: np.ndarray, widths: np.ndarray | int) -> None:
        """Many unsigned fields; widths may exceed 64 when the value's top bits are zero."""
        self._flush()
        values = np.asarray(values, dtype=np.uint64).ravel()
        if np.ndim(widths) == 0:
            widths = np.full(values.size, widths, dtype=np.int64)
        else:
            widths = np.asarray(widths, dtype=np.int64).ravel()
            if widths.size != values.size:
                raise ValueError("one width per value")
        self._values.append(values)
        self._widths.append(widths)
        self._uncounted.append(widths)

    def to_bytes(self) -> bytes:
        """The fields, most significant bit first, zero-padded to whole bytes."""
        self._flush()
        if not self._values:
            return b""
        values = np.concatenate(self._values)
        widths = np.concatenate(self._widths)
        keep = widths > 0
        values, widths = values[keep], widths[keep]
        total = int(widths.sum())
        if total == 0:
            return b""
        # Each field is a 64-bit value (only its low ``width`` bits: a wider field's top
        # bits are zeros) ending at bit ``end``: it falls in the big-endian 64-bit word
        # holding bit end - 1 and the word before it. Fields share no bits, so adding
        # every part into its word is the same as setting its bits.
        short = widths < 64
        low = (np.uint64(1) << np.minimum(widths, 63).astype(np.uint64)) - np.uint64(1)
        values = values & np.where(short, low, np.uint64(0xFFFFFFFFFFFFFFFF))
        end = np.cumsum(widths)
        word = (end - 1) >> 6
        used = (((end - 1) & 63) + 1).astype(np.uint64)  # bits of the field in that word
        words = np.zeros(int(word[-1]) + 2, dtype=np.uint64)  # words[0]: before the first
        np.add.at(words, word + 1, values << (np.uint64(64) - used))
        spill = used < 64  # the rest, in the word before (zero where the top bits are)
        np.add.at(words, word[spill], values[spill] >> used[spill])
        return words[1:].astype(">u8").tobytes()[: (total + 7) >> 3]


class BitReader:
    """Reads fields from a payload; every overrun raises :class:`CodecError`."""

    def __init__(self, payload: bytes, start_byte: int = 0) -> None:
        self._bytes = np.frombuffer(payload, dtype=np.uint8)[start_byte:]
        self._raw = self._bytes.tobytes()  # (for single fields: int.from_bytes)
        self.bits = np.unpackbits(self._bytes)
        self.pos = 0
        self.end = self.bits.size
        self._ones: np.ndarray | None = None
        self._windows: np.ndarray | None = None

    def _need(self, n: int) -> None:
        if n < 0 or self.pos + n > self.end:
            raise CodecError("truncated payload: a field runs past its end")

    def read(self, width: int) -> int:
        """One unsigned field of ``width`` bits (at most 63)."""
        self._need(width)
        if width <= 0:
            return 0
        first, skip = self.pos >> 3, self.pos & 7  # the bytes holding the field, as one int
        count = (skip + width + 7) >> 3
        chunk = int.from_bytes(self._raw[first : first + count], "big")
        self.pos += width
        return (chunk >> (8 * count - skip - width)) & ((1 << width) - 1)

    def read_signed(self, width: int) -> int:
        value = self.read(width)
        if width and value >> (width - 1):
            value -= 1 << width
        return value

    def read_array(self, widths: np.ndarray) -> np.ndarray:
        """Many unsigned fields of the given widths (each at most 63) as uint64."""
        widths = np.asarray(widths, dtype=np.int64)
        total = int(widths.sum())
        self._need(total)
        if widths.size == 0:
            return np.zeros(0, dtype=np.uint64)
        top = int(widths.max())
        if top == 0:
            return np.zeros(widths.size, dtype=np.uint64)
        starts = self.pos + np.cumsum(widths) - widths
        if top <= 57:  # each field inside the 8 bytes from the one holding its first bit
            if self._windows is None:  # the 64 bits from each byte on, big-endian
                padded = np.zeros(self._bytes.size + 8, dtype=np.uint64)
                padded[: self._bytes.size] = self._bytes
                windows = padded[:-7] << np.uint64(56)
                for j in range(1, 8):
                    windows |= padded[j : j - 7 if j < 7 else None] << np.uint64(56 - 8 * j)
                self._windows = windows
            window = self._windows[starts >> 3] << (starts & 7).astype(np.uint64)
            self.pos += total
            return np.where(
                widths > 0, window >> (64 - np.maximum(widths, 1)).astype(np.uint64), 0
            ).astype(np.uint64)
        col = np.arange(top, dtype=np.int64)
        # Right-align each field in a row of `top` bits: column j holds bit j - (top - w).
        offset = col[None, :] - (top - widths)[:, None]
        valid = offset >= 0
        index = np.where(valid, starts[:, None] + offset, 0)
        bits = np.where(valid, self.bits[index], 0).astype(np.uint64)
        weights = np.uint64(1) << np.arange(top - 1, -1, -1, dtype=np.uint64)
        self.pos += total
        return (bits * weights[None, :]).sum(axis=1, dtype=np.uint64)

    def read_unary(self, n: int) -> np.ndarray:
        """``n`` unary codes (q zeros then a one) as their q values."""
        return self.read_unary_ends(n)[0]

    def read_unary_ends(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`read_unary`, and the position of each code's one bit."""
        if n == 0:
            return np.zeros(0, dtype=np.uint64), np.zeros(0, dtype=np.int64)
        if self._ones is None:
            self._ones = np.flatnonzero(self.bits)
        first = int(np.searchsorted(self._ones, self.pos))
        if first + n > self._ones.size:
            raise CodecError("truncated payload: unary codes run past its end")
        ones = self._ones[first : first + n]
        q = np.empty(n, dtype=np.int64)
        q[0] = ones[0] - self.pos
        np.subtract(ones[1:], ones[:-1], out=q[1:])
        q[1:] -= 1
        self.pos = int(ones[-1]) + 1
        return q.view(np.uint64), ones

    def finish(self) -> None:
        """Only zero padding (fewer than 8 bits) may follow the last field."""
        rest = self.end - self.pos
        if rest >= 8 or (rest and self.bits[self.pos :].any()):
            raise CodecError(f"corrupt payload: {rest} bits left after the last field")


def _gaps(a: np.ndarray) -> np.ndarray:
    """np.diff of a 1-D array, without its per-call overhead (hot in the encoder)."""
    return a[1:] - a[:-1]


def _bit_lengths(values: np.ndarray) -> np.ndarray:
    """Bit length of each value (exact below 2**53), as int64."""
    return np.frexp(values.astype(np.float64))[1].astype(np.int64)


class _Costs:
    """Sums over partitions of each candidate parameter's bits per value, shared by all
    partition orders: ``(u >> k) + k + 1`` for Rice parameter k and, with ``half``, also
    ``(u >> k) + k + [u < 2**k] + [u < 2**(k + 1)]`` for the half step 2k + 1.

    The best k of a partition sits near log2 of its mean; the candidates span the
    smallest to the largest mean over partitions of 16 values, with the margins of
    K_RANGE (K_RANGE_HALF) either side. The per-value bits are not kept: a partition's
    sum is that of ``u >> k`` plus its count times the constant (and, for a half step,
    the number of its values with quotient 0 and of those with quotient at most 1), all
    exact integers."""

    _params: dict[tuple[int, int, bool], np.ndarray] = {}  # (lo, hi, half) -> parameters

    def __init__(self, u: np.ndarray, half: bool = False) -> None:
        self.u = u
        self.half = half
        self.escape = HALF_ESCAPE if half else ESCAPE
        n = u.size
        if n:
            parts = max(1, min(1 << MAX_ORDER, n // 16))
            bounds = partition_bounds(n, (parts.bit_length() - 1))
            # (exact integer sums: the partitions hold at least one value each)
            sums = np.add.reduceat(u, bounds[:-1]).astype(np.float64)
            means = sums / np.maximum(_gaps(bounds), 1)
            below, above = K_RANGE_HALF if half else K_RANGE
            lo = max(0, int(np.log2(means.min() + 1.0)) - below)
            hi = min(MAX_K, int(np.log2(means.max() + 1.0)) + above)
        else:
            lo, hi = 0, 0
        self.ks = ks = np.arange(lo, hi + 1, dtype=np.uint64)
        self._shifted = u[None, :] >> ks[:, None]  # (K, n)
        key = (lo, hi, half)
        params = _Costs._params.get(key)
        if params is None:  # rows in parameter order: k = lo, half step, k = lo + 1, ...
            if half:
                params = np.repeat(2 * ks.astype(np.int64), 2) + np.tile([0, 1], ks.size)
            else:
                params = ks.astype(np.int64)
            params.setflags(write=False)
            _Costs._params[key] = params
        self.params = params

    def part_sums(self, bounds: np.ndarray) -> np.ndarray:
        """The bits of each candidate parameter (a row, in the order of ``params``) over
        each partition (a column; start indices ``bounds[:-1]``, then n), as float64."""
        shifted, ks = self._shifted, self.ks
        counts = _gaps(bounds).astype(np.uint64)
        if shifted.shape[1] == 0 or not counts.all():  # empty partitions: prefix sums
            return self._prefix_sums(bounds)
        starts = bounds[:-1]
        plain = np.add.reduceat(shifted, starts, axis=1)  # (K, parts): sums of u >> k
        if not self.half:
            return (plain + (ks + np.uint64(1))[:, None] * counts).astype(np.float64)
        flat = shifted + (shifted == 0) + (shifted <= 1)
        out = np.empty((2 * ks.size, counts.size), dtype=np.float64)
        out[0::2] = plain + (ks + np.uint64(1))[:, None] * counts
        out[1::2] = np.add.reduceat(flat, starts, axis=1) + ks[:, None] * counts
        return out

    def _prefix_sums(self, bounds: np.ndarray) -> np.ndarray:
        """:meth:`part_sums` through prefix sums of every value's bits (any bounds)."""
        shifted, ks = self._shifted, self.ks
        n = shifted.shape[1]
        if self.half:
            bits = np.empty((2 * ks.size, n), dtype=np.uint64)
            bits[0::2] = shifted + (ks[:, None] + np.uint64(1))
            bits[1::2] = shifted + ks[:, None] + (shifted == 0) + (shifted <= 1)
        else:
            bits = shifted + (ks[:, None] + np.uint64(1))
        csum = np.zeros((bits.shape[0], n + 1), dtype=np.uint64)
        np.cumsum(bits, axis=1, dtype=np.uint64, out=csum[:, 1:])
        return (csum[:, bounds[1:]] - csum[:, bounds[:-1]]).astype(np.float64)

    def table(self, order: int) -> tuple[np.ndarray, np.ndarray]:
        """(best cost per partition, its parameter) for one partition order; parameter
        ESCAPE means fixed width."""
        return self.table_bounds(partition_bounds(self.u.size, order))

    def table_bounds(self, bounds: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The same for explicit partition bounds (start indices, then n)."""
        u = self.u
        counts = _gaps(bounds).astype(np.float64)
        rice = self.part_sums(bounds)
        best_row = np.argmin(rice, axis=0)
        best = rice[best_row, np.arange(counts.size)] + PARAM_COST
        best_k = self.params[best_row]
        # Escape: every value at the width of the partition's largest.
        if u.size:
            tops = np.maximum.reduceat(u, bounds[:-1])
            widths = _bit_lengths(tops)
        else:
            widths = np.zeros(counts.size, dtype=np.int64)
        escape = counts * widths + PARAM_COST + WIDTH_BITS
        escape[widths >= 1 << WIDTH_BITS] = np.inf
        use_escape = escape < best
        params = np.where(use_escape, self.escape, best_k)
        return np.where(use_escape, escape, best), params


def choose(u: np.ndarray, max_order: int = MAX_ORDER, min_partition: int = 16) -> tuple[int, int]:
    """(bits, partition order) of the cheapest partitioning of ``u`` (header included)."""
    return _choose(_Costs(u), max_order, min_partition)[:2]


def _pick_levels(
    costs: _Costs, quot: np.ndarray, counts: np.ndarray, tops: np.ndarray, levels: int
) -> list[tuple[int, np.ndarray]]:
    """(bits, parameters) of each of ``levels`` partitionings, the finest first: the
    partitions whose candidate costs are the columns of ``quot`` (``counts`` values each,
    the largest ``tops``), then neighbouring pairs merged, and so on. Each partition takes
    its cheapest parameter, or the escape when fixed width is cheaper. Parameters count
    PARAM_COST bits each, or with half steps exactly what :func:`_write_param` writes.
    All levels are costed in one pass over their columns laid side by side."""
    parts = counts.size
    layout = _LEVELS.get((parts, levels))
    if layout is None:
        layout = _LEVELS[(parts, levels)] = _levels_layout(parts, levels)
    sizes, starts, spans, total = layout
    # Every level's columns in one array: a level's partition is the union of two
    # neighbours of the level before (sums of integers: exact in float64).
    q = np.empty((quot.shape[0], total))
    cnt = np.empty(total)
    top = np.empty(total, dtype=np.uint64)
    q[:, :parts], cnt[:parts], top[:parts] = quot, counts, tops
    for a, b, c in spans:
        np.add(q[:, a:b:2], q[:, a + 1 : b : 2], out=q[:, b:c])
        np.add(cnt[a:b:2], cnt[a + 1 : b : 2], out=cnt[b:c])
        np.maximum(top[a:b:2], top[a + 1 : b : 2], out=top[b:c])
    rows = q.argmin(axis=0)
    best = q.min(axis=0)
    widths = _bit_lengths(top)
    escape = cnt * widths + WIDTH_BITS
    escape[widths >= 1 << WIDTH_BITS] = np.inf
    params = np.where(escape < best, costs.escape, costs.params[rows])
    bits = np.add.reduceat(np.minimum(best, escape), starts)
    if costs.half:
        step = np.empty(total)
        d = params[1:] - params[:-1]
        np.subtract(2 * np.abs(d), d < 0, out=step[1:])
        step[1:] += 1
        step[starts] = HALF_PARAM_BITS  # each level's first parameter is sent whole
        bits += np.add.reduceat(step, starts)
    else:
        bits += PARAM_COST * sizes.astype(np.float64)
    return [
        (int(b), params[i : i + size])
        for b, i, size in zip(bits.tolist(), starts.tolist(), sizes.tolist(), strict=True)
    ]


_LEVELS: dict[tuple[int, int], tuple] = {}  # (partitions, levels) -> _levels_layout


def _levels_layout(parts: int, levels: int) -> tuple[np.ndarray, np.ndarray, list, int]:
    """(partitions of each level, where each level's columns start, (start of a level,
    of the next, of the one after) for each merge, all columns) for :func:`_pick_levels`;
    cached."""
    sizes = [parts]
    for _ in range(levels - 1):
        sizes.append(sizes[-1] // 2)
    starts = [0]
    for size in sizes:
        starts.append(starts[-1] + size)
    spans = list(zip(starts[:-2], starts[1:-1], starts[2:], strict=True))
    sizes_a = np.array(sizes, dtype=np.int64)
    starts_a = np.array(starts[:-1], dtype=np.int64)
    for arr in (sizes_a, starts_a):
        arr.setflags(write=False)
    return sizes_a, starts_a, spans, starts[-1]


def _choose(costs: _Costs, max_order: int, min_partition: int) -> tuple[int, int, np.ndarray]:
    """(bits, order, parameters) of the cheapest partition order. The partitions of order o are
    unions of those of order o + 1, so every order is costed from the finest one."""
    n = costs.u.size
    top = 0
    while top < min(max_order, MAX_ORDER) and n >> (top + 1) >= min_partition:
        top += 1
    u = costs.u
    bounds = partition_bounds(n, top)
    quot = costs.part_sums(bounds)
    counts = _gaps(bounds).astype(np.float64)
    tops = np.maximum.reduceat(u, bounds[:-1]) if n else np.zeros(counts.size, np.uint64)
    best_bits, best_order, best_params = None, 0, np.zeros(1, dtype=np.int64)
    picks = _pick_levels(costs, quot, counts, tops, top + 1)
    for order, (bits, params) in zip(range(top, -1, -1), picks, strict=True):
        bits += ORDER_BITS
        if best_bits is None or bits <= best_bits:
            best_bits, best_order, best_params = bits, order, params
    return (best_bits if best_bits is not None else ORDER_BITS), best_order, best_params


def estimate_rows(u: np.ndarray, bounds: np.ndarray) -> np.ndarray:
    """The estimated Rice bits of each row of zigzagged values ``u`` (uint64, 2-D):
    the sum of :func:`estimate_parts`."""
    return estimate_parts(u, bounds).sum(axis=1)


def estimate_parts(u: np.ndarray, bounds: np.ndarray) -> np.ndarray:
    """The Rice bits of each partition of each row of zigzagged values ``u`` (uint64,
    2-D; partitions start at ``bounds[:-1]``) with the better of two parameters,
    k0 = floor(log2(0.69 mean)) and k0 + 1 (escapes aside), plus PARAM_COST. Exact sums
    of ``u >> k``, not u / 2**k: the floors matter when codings differ by a fraction of
    a bit per sample."""
    lengths = _gaps(bounds)
    counts = lengths.astype(np.float64)
    sums = np.add.reduceat(u, bounds[:-1], axis=1).astype(np.float64)
    mean = sums / np.maximum(counts, 1.0)
    k0 = np.minimum(np.maximum(np.floor(np.log2(mean * 0.69 + 1e-9)), 0.0), MAX_K - 1.0)
    q = u >> np.repeat(k0.astype(np.uint64), lengths, axis=1)
    bits0 = np.add.reduceat(q, bounds[:-1], axis=1).astype(np.float64) + counts * (k0 + 1.0)
    q >>= np.uint64(1)
    bits1 = np.add.reduceat(q, bounds[:-1], axis=1).astype(np.float64) + counts * (k0 + 2.0)
    return np.minimum(bits0, bits1) + PARAM_COST


_SPLITS: dict[tuple[bytes, int], np.ndarray] = {}  # split_bounds, by (base, split)


def split_bounds(base: np.ndarray, split: int) -> np.ndarray:
    """Each partition of ``base`` cut into 2**split near-equal parts (read-only: cached,
    since a codec's blocks repeat their band layouts)."""
    base = np.asarray(base, dtype=np.int64)
    key = (base.tobytes(), split)
    out = _SPLITS.get(key)
    if out is None:
        parts = 1 << split
        starts, lengths = base[:-1], _gaps(base)
        inner = starts[:, None] + (np.arange(parts)[None, :] * lengths[:, None]) // parts
        out = np.concatenate([inner.ravel(), base[-1:]])
        out.setflags(write=False)
        if len(_SPLITS) >= 4096:
            _SPLITS.clear()
        _SPLITS[key] = out
    return out


SPLIT_BITS = 2


class BoundsPlan:
    """Coding of a sequence with known natural partitions (e.g. wavelet bands), each cut
    again into 2**split parts, split 0..3 chosen by cost."""

    def __init__(
        self, x: np.ndarray, base: np.ndarray, min_partition: int = 8, half: bool = False
    ) -> None:
        self.costs = costs = _Costs(zigzag(x), half)
        self.base = np.asarray(base, dtype=np.int64)
        shortest = int(_gaps(self.base).min()) if self.base.size > 1 else 0
        top = 0
        while top < (1 << SPLIT_BITS) - 1 and shortest >> (top + 1) >= min_partition:
            top += 1
        # The parts of split s are unions of neighbouring pairs of split s + 1 (within a
        # band), so every split is costed from the finest one, merging pairs.
        bounds = split_bounds(self.base, top)
        u = costs.u
        quot = costs.part_sums(bounds)
        counts = _gaps(bounds).astype(np.float64)
        tops = np.maximum.reduceat(u, bounds[:-1]) if u.size else np.zeros(counts.size, np.uint64)
        best = None
        picks = _pick_levels(costs, quot, counts, tops, top + 1)
        for split, (bits, params) in zip(range(top, -1, -1), picks, strict=True):
            bits += SPLIT_BITS
            if best is None or bits <= best[0]:  # ties: the coarser split, fewer parameters
                best = (bits, split, params)
        self.bits, self.split, self.params = best

    def write(self, w: BitWriter) -> None:
        w.write(self.split, SPLIT_BITS)
        bounds = split_bounds(self.base, self.split)
        _write_body(w, self.costs.u, bounds, self.params, self.costs.half)


def decode_split(
    r: BitReader, base: np.ndarray, max_width: int = 40, half: bool = False
) -> np.ndarray:
    """Read what :meth:`BoundsPlan.write` wrote for these base partitions."""
    split = r.read(SPLIT_BITS)
    base = np.asarray(base, dtype=np.int64)
    if base.size > 1 and int(_gaps(base).min()) >> split < 1:
        raise CodecError(f"corrupt payload: split {split} leaves empty partitions")
    return decode_bounds(r, split_bounds(base, split), max_width, half)


class Plan:
    """How a sequence will be coded: its partition order and cost in bits."""

    def __init__(
        self, x: np.ndarray, max_order: int = MAX_ORDER, min_partition: int = 16, half: bool = False
    ):
        self.costs = _Costs(zigzag(x), half)
        self.bits, self.order, self.params = _choose(self.costs, max_order, min_partition)


def encode(
    w: BitWriter, x: np.ndarray, max_order: int = MAX_ORDER, min_partition: int = 16
) -> None:
    """Append signed integers ``x`` (int64) to ``w`` in the layout described above."""
    write(w, Plan(x, max_order, min_partition))


def write(w: BitWriter, plan: Plan) -> None:
    """Append a planned sequence to ``w``."""
    w.write(plan.order, ORDER_BITS)
    u = plan.costs.u
    _write_body(w, u, partition_bounds(u.size, plan.order), plan.params, plan.costs.half)


def encode_bounds(w: BitWriter, x: np.ndarray, bounds: np.ndarray) -> None:
    """Append ``x`` with one parameter per given partition (no order field): for data
    whose natural partitions the decoder knows, like wavelet bands."""
    costs = _Costs(zigzag(x))
    bounds = np.asarray(bounds, dtype=np.int64)
    _write_body(w, costs.u, bounds, costs.table_bounds(bounds)[1])


def _write_body(
    w: BitWriter, u: np.ndarray, bounds: np.ndarray, params: np.ndarray, half: bool = False
) -> None:
    escape = HALF_ESCAPE if half else ESCAPE
    plist = params.tolist()
    if escape not in plist and plist:  # (the usual case) no width fields between them:
        # the parameters as one run of fields, and each partition's widths by repetition
        w.write(plist[0], HALF_PARAM_BITS if half else PARAM_BITS)
        d = params[1:] - params[:-1]
        w.write_array(np.ones(d.size, dtype=np.uint64), 2 * np.abs(d) - (d < 0) + 1)
        counts = _gaps(bounds)
        if not half:
            low_widths = np.repeat(params, counts)
            shifts = low_widths.astype(np.uint64)
            w.write_array(u & ((np.uint64(1) << shifts) - np.uint64(1)), low_widths)
            w.write_array(np.ones(u.size, dtype=np.uint64), (u >> shifts).astype(np.int64) + 1)
            return
        low_widths = np.repeat(params >> 1, counts)
        steps = np.repeat(params & 1, counts)
        t = (u >> low_widths.astype(np.uint64)).astype(np.int64)
        doubled = (steps == 1) & (t <= 1)  # in the first bucket: k + 1 low bits
        w.write_array(np.ones(u.size, dtype=np.uint64), np.where(doubled, 0, t - steps) + 1)
        low_widths += doubled
        mask = (np.uint64(1) << low_widths.astype(np.uint64)) - np.uint64(1)
        w.write_array(u & mask, low_widths)
        return
    low_widths = np.empty(u.size, dtype=np.int64)
    steps = np.zeros(u.size, dtype=np.int64)  # 1 where a half step doubles the first bucket
    unary = np.ones(u.size, dtype=bool)
    last = None
    for p, k in enumerate(plist):
        lo, hi = int(bounds[p]), int(bounds[p + 1])
        _write_param(w, k, last, half)
        last = k
        if k == escape:
            width = bit_length(u[lo:hi])
            w.write(width, WIDTH_BITS)
            low_widths[lo:hi] = width
            unary[lo:hi] = False
        elif half:
            low_widths[lo:hi] = k >> 1
            steps[lo:hi] = k & 1
        else:
            low_widths[lo:hi] = k
    if not half:
        mask = (np.uint64(1) << low_widths.astype(np.uint64)) - np.uint64(1)
        w.write_array(u & mask, low_widths)
        q = u[unary] >> low_widths[unary].astype(np.uint64)
        w.write_array(np.ones(q.size, dtype=np.uint64), q.astype(np.int64) + 1)
        return
    # Half steps: the quotients first (a value's low-bit width depends on its quotient).
    t = (u >> low_widths.astype(np.uint64)).astype(np.int64)
    doubled = (steps == 1) & (t <= 1) & unary  # in the first bucket: k + 1 low bits
    q = np.where(doubled, 0, t - steps)[unary]
    w.write_array(np.ones(q.size, dtype=np.uint64), q + 1)
    low_widths += doubled
    mask = (np.uint64(1) << low_widths.astype(np.uint64)) - np.uint64(1)
    w.write_array(u & mask, low_widths)


def _write_param(w: BitWriter, k: int, last: int | None, half: bool = False) -> None:
    """The first parameter in PARAM_BITS (HALF_PARAM_BITS); each next one as the
    zigzagged difference from the one before, in unary (neighbouring partitions mostly
    share k, give or take one)."""
    if last is None:
        w.write(k, HALF_PARAM_BITS if half else PARAM_BITS)
    else:
        delta = k - last
        w.write(1, 2 * abs(delta) - (delta < 0) + 1)


def _read_params(r: BitReader, count: int, half: bool) -> tuple[np.ndarray, dict[int, int]]:
    """The ``count`` parameters of a sequence (:func:`_write_param`) and the escape width
    of each escaped partition. The differences are read as one run of unary codes,
    which stops at an escape (its width field interrupts the run)."""
    escape = HALF_ESCAPE if half else ESCAPE
    top = MAX_HALF if half else MAX_K
    params = [r.read(HALF_PARAM_BITS if half else PARAM_BITS)]
    widths: dict[int, int] = {}
    while True:
        if params[-1] == escape:
            widths[len(params) - 1] = r.read(WIDTH_BITS)
        elif params[-1] > top:
            raise CodecError(f"corrupt payload: Rice parameter {params[-1]}")
        left = count - len(params)
        if left <= 0:
            return np.array(params[:count], dtype=np.int64), widths
        z, ends = r.read_unary_ends(left)
        z = z.view(np.int64)
        values = params[-1] + np.cumsum(np.where(z & 1, -((z + 1) >> 1), z >> 1))
        stop = np.flatnonzero((values < 0) | (values >= top + 1))  # escape, or bad
        if stop.size == 0:
            params += values.tolist()
            continue
        j = int(stop[0])
        params += values[: j + 1].tolist()
        r.pos = int(ends[j]) + 1  # the rest after this one's width (or the error)
        if params[-1] != escape:
            raise CodecError(f"corrupt payload: Rice parameter {params[-1]}")


def decode(r: BitReader, n: int, max_width: int = 40, half: bool = False) -> np.ndarray:
    """Read ``n`` signed integers written by :func:`encode` (or :func:`write` of a
    :class:`Plan` made with ``half``); parameters and escape widths above ``max_width``
    bits are refused (:class:`CodecError`)."""
    order = r.read(ORDER_BITS)
    if (1 << order) > max(n, 1):
        raise CodecError(f"corrupt payload: {1 << order} partitions for {n} values")
    return decode_bounds(r, partition_bounds(n, order), max_width, half)


def decode_bounds(
    r: BitReader, bounds: np.ndarray, max_width: int = 40, half: bool = False
) -> np.ndarray:
    """Read what :func:`encode_bounds` (or a ``half`` plan) wrote for these bounds."""
    n = int(bounds[-1])
    params, escaped = _read_params(r, len(bounds) - 1, half)
    coded = params != (HALF_ESCAPE if half else ESCAPE)
    ks = np.where(coded, params >> 1 if half else params, 0)
    for p, width in escaped.items():
        ks[p] = width
    if ks.size and int(ks.max()) > max_width:
        raise CodecError(f"corrupt payload: Rice parameter {int(ks.max())} over {max_width} bits")
    counts = _gaps(np.asarray(bounds, dtype=np.int64))
    low_widths = np.repeat(ks, counts)
    unary = np.repeat(coded, counts)
    steps = np.repeat(params & 1 & coded, counts) if half else None
    m = int(unary.sum())
    if not half:
        u = r.read_array(low_widths)
        q = r.read_unary(m)
        if m:
            if int(q.max()) >= 1 << 24:
                raise CodecError("corrupt payload: a Rice quotient out of range")
            u[unary] |= q << low_widths[unary].astype(np.uint64)
        return unzigzag(u)
    q = r.read_unary(m)
    if m and int(q.max()) >= 1 << 24:
        raise CodecError("corrupt payload: a Rice quotient out of range")
    quot = np.zeros(n, dtype=np.int64)
    quot[unary] = q.view(np.int64)
    doubled = (steps == 1) & (quot == 0) & unary
    u = r.read_array(low_widths + doubled)
    high = np.where(doubled, 0, quot + steps).astype(np.uint64)
    return unzigzag(u | (high << low_widths.astype(np.uint64)))
