"""rtai lossless, the bitstream: what every field means, how it is written and read,
and the decoder (pure).

:mod:`rtai.codecs.lossless` describes the coder as a whole; the encoder's choices are in
:mod:`rtai.codecs.lossless_search`, which writes what it chose with :func:`header_byte`,
:func:`write_channel` and the field writers here. Everything a decoder must agree on lives
here: the format's constants (``HALF_STEPS`` and ``BANK`` are format switches: bench and
tests flip them for encoder and decoder alike), the transforms both sides compute
(:func:`adaptive_bands` and its inverse, :func:`cross_pred`, :func:`predict_taps`) and the
widths the decoder accepts (:func:`band_width`, :func:`cross_width`).

The bitstream is described in docs/protocol.md (RTP, "rtai lossless"). The decoder checks
every field and range and raises :class:`CodecError` on anything that is not a
well-formed block of the negotiated shape.
"""

from __future__ import annotations

import numpy as np

from rtai.codecs import CodecError, rice
from rtai.dsp import wavelet

VERSION = 4  # 2: Rice sequences with half-step parameters; 3: lifting depths 1..4;
# 4: the longer lifting steps of wavelet.LONG
HEADER_VERSION = VERSION & 3  # the header's 2-bit version field (0 for version 4)
MAX_FIXED_ORDER = 4
DEPTHS = (16, 24)
HALF_STEPS = True  # Rice parameters in half steps (rice.py; bench/codecs.py may turn it off)

# Stereo modes: which two channels are coded.
INDEPENDENT, LEFT_SIDE, SIDE_RIGHT, MID_SIDE = range(4)
STEREO_PAIRS = {INDEPENDENT: "LR", LEFT_SIDE: "LS", SIDE_RIGHT: "SR", MID_SIDE: "MS"}

# Subframe types and their fields.
CONSTANT, FIXED, LIFTED, ADAPTIVE = range(4)
TYPE_BITS = 2
SHIFT_BITS = 5  # a shift is sent as one flag bit, then these bits when it is not zero
ORDER_BITS = 3
WARMUP_WIDTH_BITS = 5
LIFT_BITS = 2  # the depth less one
LIFT_DEPTHS = (1, 2, 3, 4)
BANK = wavelet.LONG  # the lifting steps: the 20-tap Lagrange midpoint interpolator for
# predict and update (version 4; the (9,7)-M steps before: 0.2-6 % bigger packets)
# The fitted predict step (subframe type ADAPTIVE): the block's own least-squares step.
ADAPT_TAPS = (8, 12)  # taps of that predict step (even neighbours of each odd sample,
# symmetric: one coefficient sent per pair mirrored about the sample); a bit says which
ADAPT_LIMIT = 1 << 40  # no intermediate low band may reach this magnitude
ADAPT_PRECISION = 7  # its coefficients are integers over 2**7 (coarse: they cost bits)
COEF_WIDTH_BITS = 5
MAX_COEF_WIDTH = 17  # zigzagged: |coefficient| < 2**16

# Cross-channel prediction (stereo): the second coded channel minus a short FIR of the
# first, whose whole block the decoder already has, so taps either side of the sample.
XPRED_REACH = 1  # taps at lags -1..1
XPRED_TAPS = 2 * XPRED_REACH + 1
XPRED_PRECISION = 8  # coefficients are integers over 2**8
XPRED_COEF_WIDTH_BITS = 4
MAX_XPRED_COEF_WIDTH = XPRED_PRECISION + 4  # zigzagged: |coefficient| <= 8 * 2**XPRED_PRECISION
XPRED_GROWTH = XPRED_TAPS.bit_length() + 3  # bits the prediction can add to the width


def _unfixed(warm: np.ndarray, residual: np.ndarray, width: int) -> np.ndarray:
    """Undo the order-k polynomial predictor (``warm``: the 0th..(k-1)th differences at the
    block start; ``residual``: the k-th difference), refusing values no ``width``-bit
    signal can make."""
    d = residual
    for j in range(warm.size - 1, -1, -1):
        limit = 1 << (width - 1 + j)
        if (d.size and int(np.abs(d).max()) > 2 * limit) or abs(int(warm[j])) > limit:
            raise CodecError("corrupt lossless payload: a difference out of range")
        out = np.empty(d.size + 1, dtype=np.int64)
        out[0] = warm[j]
        np.cumsum(d, out=out[1:])
        out[1:] += warm[j]
        d = out
    return d


def shift_bits(shift: int) -> int:
    return 1 + SHIFT_BITS if shift else 1


def write_shift(w: rice.BitWriter, shift: int) -> None:
    w.write(int(shift > 0), 1)
    if shift:
        w.write(shift, SHIFT_BITS)


def _read_shift(r: rice.BitReader) -> int:
    return r.read(SHIFT_BITS) if r.read(1) else 0


def zigzags(values: np.ndarray) -> tuple[list[int], int]:
    """(:func:`rice.zigzag` of a few int64 values, as Python ints; the bits of the
    largest): no NumPy call, which costs more than a few values' Python."""
    z = [(v << 1) ^ (v >> 63) for v in values.tolist()]
    return z, max(z).bit_length() if z else 0


def write_few(w: rice.BitWriter, values: np.ndarray, width_bits: int) -> None:
    """A few signed values: their zigzagged width in ``width_bits`` bits, then each at it
    (the same bits as one write_array of the zigzagged values)."""
    z, width = zigzags(values)
    w.write(width, width_bits)
    for v in z:
        w.write(v, width)


def _read_few(r: rice.BitReader, count: int, width: int) -> np.ndarray:
    """``count`` zigzagged fields of ``width`` bits (:func:`write_few`) as int64."""
    values = [r.read(width) for _ in range(count)]
    return np.array([(v >> 1) ^ -(v & 1) for v in values], dtype=np.int64)  # unzigzag


def warmup_bits(values: list[int]) -> int:
    """Bits of the warm-up field sending ``values`` (Python ints: no NumPy call, which
    costs more than a few values' Python; hot in the encoder)."""
    if not values:
        return 0
    top = max((v << 1) ^ (v >> 63) for v in values)
    return WARMUP_WIDTH_BITS + len(values) * top.bit_length()


def default_sent(count: int) -> np.ndarray:
    """What is sent for the fixed (9,7)-M predict step, (-1, 9, 9, -1) / 16, nearest
    pair first: the sent coefficients are the differences from it, small numbers."""
    fixed = np.zeros(count, dtype=np.int64)
    fixed[:2] = np.array([9, -1]) << (ADAPT_PRECISION - 4)
    return fixed


def predict_taps(sent: np.ndarray) -> np.ndarray:
    """The predict step's taps (farthest left neighbour first) from the sent values."""
    coefs = sent + default_sent(sent.size)
    return np.concatenate([coefs[::-1], coefs])


def adaptive_bands(r: np.ndarray, coefs: list, depth: int) -> list[np.ndarray] | None:
    """The packet bands of r whose first len(coefs) splits down the low-band chain use
    ``coefs`` as their predict steps; None if a low band grows past ADAPT_LIMIT."""
    if not coefs:
        return wavelet.packet_forward(r, depth, integer=True, bank=BANK)
    s, d = wavelet.split_int_pred(r, predict_taps(coefs[0]), ADAPT_PRECISION, BANK)
    if s.size and int(np.abs(s).max()) >= ADAPT_LIMIT:
        return None
    low = adaptive_bands(s, coefs[1:], depth - 1)
    return (
        None
        if low is None
        else low + wavelet.packet_forward(d, depth - 1, integer=True, bank=BANK)[::-1]
    )


def _adaptive_inverse(bands: list[np.ndarray], m: int, depth: int, coefs: list) -> np.ndarray:
    if not coefs:
        return wavelet.packet_inverse(bands, m, depth, integer=True, bank=BANK)
    ns, nd = (m + 1) // 2, m // 2
    count_s = len(wavelet.band_sizes(ns, depth - 1))
    s = _adaptive_inverse(bands[:count_s], ns, depth - 1, coefs[1:])
    if s.size and int(np.abs(s).max()) >= ADAPT_LIMIT:
        raise CodecError("corrupt lossless payload: a low band out of range")
    d = wavelet.packet_inverse(bands[count_s:][::-1], nd, depth - 1, integer=True, bank=BANK)
    return wavelet.merge_int_pred(s, d, predict_taps(coefs[0]), ADAPT_PRECISION, BANK)


def band_width(width: int, order: int, depth: int) -> int:
    """The widest (zigzagged) band value a lifted residual of this channel may have."""
    return width + order + 2 + depth


def cross_width(width_a: int, width_b: int) -> int:
    """The width of a cross-predicted second channel (b minus the prediction from a)."""
    return max(width_b, width_a + XPRED_GROWTH) + 1


def cross_pred(a: np.ndarray, coefs: np.ndarray) -> np.ndarray:
    """round(sum_j coefs[j] a[i + j] / 2**XPRED_PRECISION) for j = -reach..reach, the
    block's first and last values repeated past its ends."""
    m, n = XPRED_REACH, a.size
    padded = np.concatenate([np.repeat(a[:1], m), a, np.repeat(a[-1:], m)])
    acc = np.full(n, 1 << (XPRED_PRECISION - 1), dtype=np.int64)
    for j, c in enumerate(coefs.tolist()):
        acc += c * padded[j : j + n]
    return acc >> XPRED_PRECISION


def header_byte(depth: int, mode: int, verbatim: bool, channels: int, cross: bool = False) -> int:
    return (
        (HEADER_VERSION << 6)
        | ((depth == 24) << 5)
        | (mode << 3)
        | (verbatim << 2)
        | (channels - 1) << 1
        | cross
    )


def write_channel(w: rice.BitWriter, planned: tuple, width: int) -> None:
    """One coded channel of ``width``-bit signed samples, as :func:`_plan_coded` planned it."""
    if planned[0] == CONSTANT:
        w.write(CONSTANT, TYPE_BITS)
        w.write_signed(planned[1], width)
        return
    _, shift, order, depth, plan, warm, coefs = planned
    w.write(ADAPTIVE if coefs is not None else LIFTED if depth else FIXED, TYPE_BITS)
    write_shift(w, shift)
    w.write(order, ORDER_BITS)
    if order:
        write_few(w, warm, WARMUP_WIDTH_BITS)
    if depth:
        w.write(depth - 1, LIFT_BITS)
        if coefs and depth > 1:
            w.write(len(coefs) - 1, 1)
        if coefs:
            w.write(int(coefs[0].size == ADAPT_TAPS[1] // 2), 1)
        for c in coefs or []:
            cz = rice.zigzag(c)
            cwid = rice.bit_length(cz)
            w.write(cwid, COEF_WIDTH_BITS)
            w.write_array(cz, cwid)
        plan.write(w)
    else:
        rice.write(w, plan)


def _read_channel(r: rice.BitReader, n: int, width: int) -> tuple:
    """The fields of one coded channel of ``width``-bit samples (:func:`_finish_channels`
    rebuilds the samples): (samples of a constant channel, or None; shift, width without
    it, warm-up, residual (polynomial coding) or None; for lifting, its bands end to end,
    their number of values, depth and fitted predict steps)."""
    kind = r.read(TYPE_BITS)
    if kind == CONSTANT:
        return (np.full(n, r.read_signed(width), dtype=np.int64),)
    if kind not in (FIXED, LIFTED, ADAPTIVE):
        raise CodecError(f"corrupt lossless payload: subframe type {kind}")
    shift = _read_shift(r)
    order = r.read(ORDER_BITS)
    if shift >= width or order > MAX_FIXED_ORDER or order >= n:
        raise CodecError(f"corrupt lossless payload: shift {shift}, order {order} for {n} samples")
    cw = width - shift
    warm = np.zeros(order, dtype=np.int64)
    if order:
        ww = r.read(WARMUP_WIDTH_BITS)
        if ww > cw + order + 1:
            raise CodecError(f"corrupt lossless payload: warm-up width {ww}")
        warm = _read_few(r, order, ww)
    m = n - order
    if kind == FIXED:
        residual = rice.decode(r, m, max_width=cw + order + 1, half=HALF_STEPS)
        return (None, shift, cw, warm, residual)
    depth = r.read(LIFT_BITS) + 1
    if depth not in LIFT_DEPTHS:
        raise CodecError(f"corrupt lossless payload: lifting depth {depth}")
    coefs = []
    if kind == ADAPTIVE:
        if m < wavelet.MIN_SPLIT << depth:
            raise CodecError(f"corrupt lossless payload: fitted lifting on {m} values")
        levels = 1 + r.read(1) if depth > 1 else 1
        sent = ADAPT_TAPS[r.read(1)] // 2
        for _ in range(levels):
            cwid = r.read(COEF_WIDTH_BITS)
            if cwid > MAX_COEF_WIDTH:
                raise CodecError(f"corrupt lossless payload: coefficient width {cwid}")
            coefs.append(rice.unzigzag(r.read_array(np.full(sent, cwid, dtype=np.int64))))
    base = wavelet.band_starts(m, depth)
    joined = rice.decode_split(r, base, max_width=band_width(cw, order, depth), half=HALF_STEPS)
    return (None, shift, cw, warm, None, joined, m, depth, coefs)


def _finish_channels(fields: list[tuple]) -> list[np.ndarray]:
    """The samples of each channel of a block from :func:`_read_channel`'s fields: the
    lifting packets with fixed steps inverted together (:func:`wavelet.packet_inverse_many`),
    then each channel's differences summed and its range checked."""
    fixed = [i for i, f in enumerate(fields) if len(f) > 5 and not f[8]]
    inverted = wavelet.packet_inverse_many(
        [fields[i][5] for i in fixed],
        [fields[i][6] for i in fixed],
        [fields[i][7] for i in fixed],
        BANK,
    )
    residuals = dict(zip(fixed, inverted, strict=True))
    out = []
    for i, f in enumerate(fields):
        if f[0] is not None:  # a constant channel
            out.append(f[0])
            continue
        shift, cw, warm, residual = f[1:5]
        if i in residuals:
            residual = residuals[i]
        elif residual is None:  # fitted predict steps: one channel at a time
            joined, m, depth, coefs = f[5:]
            bands = np.split(joined, np.cumsum(wavelet.band_sizes(m, depth))[:-1])
            residual = _adaptive_inverse(bands, m, depth, coefs)
        x = _unfixed(warm, residual, cw)
        low, high = -(1 << (cw - 1)), (1 << (cw - 1)) - 1
        if int(x.min()) < low or int(x.max()) > high:
            raise CodecError("corrupt lossless payload: a sample out of range")
        out.append(x << shift)
    return out


def _unstereo(a: np.ndarray, b: np.ndarray, mode: int) -> tuple[np.ndarray, np.ndarray]:
    if mode == INDEPENDENT:
        return a, b
    if mode == LEFT_SIDE:
        return a, a - b
    if mode == SIDE_RIGHT:
        return a + b, b
    left = a + ((b + (b & 1)) >> 1)
    return left, left - b


def _is_side(mode: int, index: int) -> bool:
    return (mode in (LEFT_SIDE, MID_SIDE) and index == 1) or (mode == SIDE_RIGHT and index == 0)


def _read_cross(r: rice.BitReader, width_a: int) -> tuple[int, np.ndarray]:
    """(shift, coefficients) of a cross-channel prediction (its coded residual follows)."""
    shift = _read_shift(r)
    cwid = r.read(XPRED_COEF_WIDTH_BITS)
    if shift >= width_a or cwid > MAX_XPRED_COEF_WIDTH:
        raise CodecError(f"corrupt lossless payload: cross shift {shift}, width {cwid}")
    return shift, _read_few(r, XPRED_TAPS, cwid)


def _uncross(
    a: np.ndarray, residual: np.ndarray, shift: int, coefs: np.ndarray, width_b: int
) -> np.ndarray:
    """The second channel of a cross-predicted pair from its decoded residual, given the
    decoded first one ``a`` (:func:`_read_cross`: shift, coefs)."""
    if (a & ((1 << shift) - 1)).any() or (residual & ((1 << shift) - 1)).any():
        raise CodecError("corrupt lossless payload: cross-channel shift over nonzero bits")
    b = ((residual >> shift) + cross_pred(a >> shift, coefs)) << shift
    low, high = -(1 << (width_b - 1)), (1 << (width_b - 1)) - 1
    if int(b.min()) < low or int(b.max()) > high:
        raise CodecError("corrupt lossless payload: a cross-predicted sample out of range")
    return b


def decode_ints(payload: bytes, frames: int, channels: int) -> tuple[np.ndarray, int]:
    """(int64 samples shaped (frames, channels), depth) from one payload, or CodecError."""
    if not payload:
        raise CodecError("empty lossless payload")
    head = payload[0]
    if head >> 6 != HEADER_VERSION:
        raise CodecError(f"not an rtai lossless payload (header byte {head:#04x})")
    depth = 24 if head >> 5 & 1 else 16
    mode = head >> 3 & 3
    verbatim = bool(head >> 2 & 1)
    got_channels = (head >> 1 & 1) + 1
    cross = bool(head & 1)
    if got_channels != channels:
        raise CodecError(f"lossless payload of {got_channels} channels, expected {channels}")
    if cross and (verbatim or channels == 1):
        raise CodecError("corrupt lossless payload: cross-channel prediction without a pair")
    r = rice.BitReader(payload, start_byte=1)
    if verbatim:
        if mode != INDEPENDENT:
            raise CodecError("corrupt lossless payload: verbatim with a stereo mode")
        u = r.read_array(np.full(frames * channels, depth, dtype=np.int64)).astype(np.int64)
        r.finish()
        x = u - ((u >> (depth - 1)) << depth)
        return x.reshape(frames, channels), depth
    if channels == 1 and mode != INDEPENDENT:
        raise CodecError("corrupt lossless payload: a stereo mode in a mono block")
    widths = [
        depth + 1 if (channels == 2 and _is_side(mode, i)) else depth for i in range(channels)
    ]
    fields = [_read_channel(r, frames, widths[0])]
    if cross:
        shift, coefs = _read_cross(r, widths[0])
        fields.append(_read_channel(r, frames, cross_width(widths[0], widths[1])))
    elif channels == 2:
        fields.append(_read_channel(r, frames, widths[1]))
    r.finish()
    coded = _finish_channels(fields)  # (both channels' lifting inverted together)
    if cross:
        coded[1] = _uncross(coded[0], coded[1], shift, coefs, widths[1])
    if channels == 2:
        left, right = _unstereo(coded[0], coded[1], mode)
        x = np.stack([left, right], axis=1)
    else:
        x = coded[0][:, None]
    lo, hi = -(1 << (depth - 1)), (1 << (depth - 1)) - 1
    if int(x.min()) < lo or int(x.max()) > hi:
        raise CodecError("corrupt lossless payload: a sample out of range")
    return x, depth
