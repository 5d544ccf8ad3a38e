"""rtai lossless: bit-exact low-delay coding of one block per packet (pure).

Every packet stands alone (no state crosses packets, no look-ahead past the block),
so a lost packet costs its own block and nothing else. The coder, per block:

1. Integers: the float block is put on the 24-bit grid (x 2**23, rounded, clipped);
   16-bit audio lands on multiples of 256 and the "wasted bits" step below takes
   those 8 zero bits back out, so 16-bit input costs 16-bit rates.
2. Inter-channel decorrelation (stereo): of left/right, left/side, side/right and
   mid/side (side = L - R, mid = (L + R) >> 1), the pair with the lowest estimated
   cost is coded (each channel estimated by its best polynomial residual, all four
   channels and five orders in one pass).
3. Per coded channel: a constant block is one value; otherwise the common zero low
   bits are shifted out and a polynomial predictor of order 0..4 (the k-th
   difference of the signal) whitens it. The first k samples are the 0th..(k-1)th
   differences at the block start ("warm-up"), sent at one width. When it pays, an
   integer lifting wavelet packet of depth 1..3 (:mod:`rtai.dsp.wavelet`) then splits
   the residual into bands that get their own Rice parameters, which takes up much
   of the spectral shape an LPC filter would. From 256 frames a packet whose first
   split predicts each odd sample from its 8 even neighbours with the block's own
   least-squares coefficients (12-bit, sent) is tried too: an interpolating
   predictor, which unlike LPC's needs no recursion to invert. Candidates are ranked
   by quick estimates and the best are costed exactly. The search grows with the
   block: lifting over the best order from 128 frames, over the two orders below it
   and with the fitted predict step from 256, with more candidates from 480.
   The decoder inverts the lifting steps on whole arrays and the differences with
   cumulative sums: no loop over samples. (Why not LPC: its exact decoder is a
   recursion over samples; docs/benchmarks.md, the "decorrelation" table of
   bench/codecs.py, measures what it would buy.)
4. Residuals: partitioned adaptive Rice (:mod:`rtai.codecs.rice`).
5. If all that would be bigger than the samples themselves, the packet is verbatim.

The bitstream is described in docs/protocol.md (RTP, "rtai lossless"). The
decoder checks every field and range and raises :class:`CodecError` on anything
that is not a well-formed block of the negotiated shape.
"""

from __future__ import annotations

import numpy as np

from rtai.codecs import CodecError, EncoderSettings, rice
from rtai.codecs.standalone import StandaloneDecoder
from rtai.dsp import wavelet

LOSSLESS_PAYLOAD_TYPE = 100
VERSION = 1
MAX_FIXED_ORDER = 4
DEPTHS = (16, 24)
CODEC_DEPTH = 24  # the float path always codes on the 24-bit grid

# Stereo modes: which two channels are coded.
INDEPENDENT, LEFT_SIDE, SIDE_RIGHT, MID_SIDE = range(4)

STEREO_TRIES = 1  # stereo pairs costed exactly, the best by estimate first

# Subframe types.
CONSTANT, FIXED, LIFTED, ADAPTIVE = range(4)
TYPE_BITS = 2
SHIFT_BITS = 5
ORDER_BITS = 3
WARMUP_WIDTH_BITS = 5
LIFT_BITS = 2
LIFT_DEPTHS = (1, 2, 3)
LIFT_FRAMES = 256  # from this block length on, the lifting stage is tried (at 128 it
# costs about twice the CPU for 2-3 % smaller packets: measured in bench/codecs.py)
WIDE_FRAMES = 256  # and from this one on, over more predictor orders
ADAPT_FRAMES = 256  # and from this one on, with the block's own first predict step too
ADAPT_TAPS = 8  # taps of that predict step (even neighbours of each odd sample)
ADAPT_PRECISION = 12  # its coefficients are integers over 2**12
ADAPT_ORDERS = (1,)  # polynomial orders it is tried over
COEF_WIDTH_BITS = 5
MAX_COEF_WIDTH = 17  # zigzagged: |coefficient| < 16
THOROUGH_FRAMES = 480  # and from this one on, more candidates of each kind


def check(rate_hz: int, channels: int, block_frames: int) -> str | None:
    """Why the lossless codec cannot run at (rate, channels, block); None when it can."""
    if channels not in (1, 2):
        return f"lossless carries 1 or 2 channels, not {channels}: use --channels 1 or 2"
    if not 16 <= block_frames <= 4096:
        return f"lossless needs --frame 16..4096, not {block_frames}"
    return None


# --- integer core -----------------------------------------------------------------------


def _fixed_parts(x: np.ndarray, order: int) -> tuple[np.ndarray, np.ndarray]:
    """(warm-up values, residual) of the order-k polynomial predictor of x."""
    warm = np.empty(order, dtype=np.int64)
    d = x
    for j in range(order):
        warm[j] = d[0]
        d = np.diff(d)
    return warm, d


def _unfixed(warm: np.ndarray, residual: np.ndarray, width: int) -> np.ndarray:
    """Invert :func:`_fixed_parts`, refusing values no ``width``-bit signal can make."""
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


def _wasted_bits(x: np.ndarray) -> int:
    """The number of low zero bits every value shares (0 for an all-zero block)."""
    acc = int(np.bitwise_or.reduce(x)) if x.size else 0
    if acc == 0:
        return 0
    return (acc & -acc).bit_length() - 1


def _warmup_bits(warm: np.ndarray) -> int:
    return WARMUP_WIDTH_BITS + warm.size * rice.bit_length(rice.zigzag(warm)) if warm.size else 0


def _fit_predictor(r: np.ndarray) -> np.ndarray | None:
    """Least-squares predict-step coefficients for the odd samples of r from their even
    neighbours, quantised; None when they do not fit the coefficient field."""
    e, o = r[0::2], r[1::2]
    a = e[wavelet.pred_taps(r.size, ADAPT_TAPS)].astype(np.float64)
    h = np.linalg.lstsq(a, o.astype(np.float64), rcond=None)[0]
    coefs = np.rint(h * (1 << ADAPT_PRECISION)).astype(np.int64)
    if rice.bit_length(rice.zigzag(coefs)) > MAX_COEF_WIDTH:
        return None
    return coefs


def _adaptive_bands(r: np.ndarray, coefs: np.ndarray, depth: int) -> list[np.ndarray]:
    """The packet bands of r whose first split uses ``coefs`` as its predict step."""
    s, d = wavelet.split_int_pred(r, coefs, ADAPT_PRECISION)
    high = wavelet.packet_forward(d, depth - 1, integer=True)
    return wavelet.packet_forward(s, depth - 1, integer=True) + high[::-1]


def _adaptive_inverse(bands: list[np.ndarray], m: int, depth: int, coefs: np.ndarray):
    ns, nd = (m + 1) // 2, m // 2
    count_s = len(wavelet.band_sizes(ns, depth - 1))
    s = wavelet.packet_inverse(bands[:count_s], ns, depth - 1, integer=True)
    d = wavelet.packet_inverse(bands[count_s:][::-1], nd, depth - 1, integer=True)
    return wavelet.merge_int_pred(s, d, coefs, ADAPT_PRECISION)


def _adaptive_sizes(m: int, depth: int) -> list[int]:
    ns, nd = (m + 1) // 2, m // 2
    return wavelet.band_sizes(ns, depth - 1) + wavelet.band_sizes(nd, depth - 1)[::-1]


def _plan_channel(x: np.ndarray, width: int) -> tuple:
    """The cheapest coding of one (shifted, ``width``-bit) channel: (bits, order, lift
    depth, plan, warm-up, adaptive predictor coefficients or None).

    Candidates are ranked by quick estimates (every polynomial order; the lifting
    packet at each depth over the residual of the best order and the one below), and
    the best of each kind is then costed exactly."""
    n = x.size
    diffs = [x]
    for _ in range(min(MAX_FIXED_ORDER, n - 1)):
        diffs.append(diffs[-1][1:] - diffs[-1][:-1])
    firsts = [int(d[0]) for d in diffs]
    warms = [np.array(firsts[:k], dtype=np.int64) for k in range(len(diffs))]
    warm_bits = [_warmup_bits(w) for w in warms]
    # Every order's estimate at once, over the last n - 4 values of each residual.
    m = n - len(diffs) + 1
    rows = np.stack([d[d.size - m :] for d in diffs])
    bounds = rice.partition_bounds(m, 3 if m >= 64 else 0)
    est = (rice.estimate_rows(rice.zigzag(rows).astype(np.float64), bounds) + warm_bits).tolist()
    # The search grows with the block: a short block has little time (and Python's
    # cost per NumPy call is fixed), a long one has more time and more to gain.
    thorough = n >= THOROUGH_FRAMES
    tries = 2 if thorough else 1
    depths = LIFT_DEPTHS if thorough else LIFT_DEPTHS[:2] if n >= LIFT_FRAMES else ()
    best = None
    for k in np.argsort(est)[:tries].tolist():
        plan = rice.Plan(diffs[k])
        bits = plan.bits + warm_bits[k]
        if best is None or bits < best[0]:
            best = (bits, k, 0, plan, warms[k], None)
    top = best[1]
    # Lifting estimates for the best order and the two below it, all at once: the
    # residuals, cut to a common length, are columns split together.
    below = 2 if n >= WIDE_FRAMES else 0
    orders = sorted({max(top - j, 0) for j in range(below + 1)}) if depths else []
    m = n - max(orders, default=0)
    bands = [np.stack([diffs[k][diffs[k].size - m :] for k in orders], axis=1)] if orders else []
    lifted = []
    for depth in depths:  # each depth splits the last one's bands (order aside)
        if m < wavelet.MIN_SPLIT << depth:
            break
        bands = [part for b in bands for part in wavelet.split_int(b)]
        base = np.concatenate([[0], np.cumsum([b.shape[0] for b in bands])])
        u = rice.zigzag(np.concatenate(bands).T).astype(np.float64)
        guesses = rice.estimate_rows(u, base).tolist()
        lifted += [(g + warm_bits[k], k, depth) for g, k in zip(guesses, orders, strict=True)]
    lifted.sort()
    for guess, k, depth in lifted[:tries]:
        if tries == 1 and guess >= est[top]:
            break
        bands = wavelet.packet_forward(diffs[k], depth, integer=True)
        base = np.concatenate([[0], np.cumsum([b.size for b in bands])])
        plan = rice.BoundsPlan(np.concatenate(bands), base)
        bits = plan.bits + warm_bits[k] + LIFT_BITS
        if bits < best[0]:
            best = (bits, k, depth, plan, warms[k], None)
    if n >= ADAPT_FRAMES and LIFT_DEPTHS:
        bar = min([est[top]] + [g for g, _, _ in lifted[:1]])
        best = _plan_adaptive(diffs, warm_bits, warms, width, best, bar)
    return best


def _plan_adaptive(diffs, warm_bits, warms, width, best, bar: float) -> tuple:
    """``best``, or a cheaper coding whose first lifting split predicts with the block's
    own least-squares filter (orders ADAPT_ORDERS, depths 1..3; the best estimate is
    costed exactly when it beats ``bar``, the best estimate of the other codings)."""
    guesses = []
    for k in ADAPT_ORDERS:
        if k >= len(diffs) or diffs[k].size < wavelet.MIN_SPLIT << max(LIFT_DEPTHS):
            continue
        coefs = _fit_predictor(diffs[k])
        if coefs is None:
            continue
        extra = COEF_WIDTH_BITS + coefs.size * rice.bit_length(rice.zigzag(coefs))
        bands = list(wavelet.split_int_pred(diffs[k], coefs, ADAPT_PRECISION))
        for depth in LIFT_DEPTHS:  # each depth splits the last one's bands (order aside)
            if depth > 1:
                bands = [part for b in bands for part in wavelet.split_int(b)]
            base = np.concatenate([[0], np.cumsum([b.size for b in bands])])
            g = rice.estimate_bounds(np.concatenate(bands), base) + warm_bits[k] + extra
            guesses.append((g, k, depth, coefs, extra))
    if not guesses:
        return best
    guess, k, depth, coefs, extra = min(guesses, key=lambda g: g[0])
    if guess >= bar:
        return best
    bands = _adaptive_bands(diffs[k], coefs, depth)
    joined = np.concatenate(bands)
    if rice.bit_length(rice.zigzag(joined)) > _band_width(width, k, depth):
        return best  # the decoder would refuse values this wide
    base = np.concatenate([[0], np.cumsum([b.size for b in bands])])
    plan = rice.BoundsPlan(joined, base)
    bits = plan.bits + warm_bits[k] + LIFT_BITS + extra
    return (bits, k, depth, plan, warms[k], coefs) if bits < best[0] else best


def _band_width(width: int, order: int, depth: int) -> int:
    """The widest (zigzagged) band value a lifted residual of this channel may have."""
    return width + order + 2 + depth


def _quick_costs(rows: np.ndarray) -> np.ndarray:
    """A quick estimate of the coded bits of each row (a channel): that of its best
    polynomial residual, all rows and orders at once."""
    n = rows.shape[1]
    top = min(MAX_FIXED_ORDER, n - 1)
    bounds = rice.partition_bounds(n - top, 3 if n >= 64 else 0)
    best = np.full(rows.shape[0], np.inf)
    d = rows
    for k in range(top + 1):
        if k:
            d = d[:, 1:] - d[:, :-1]
        u = rice.zigzag(d[:, d.shape[1] - bounds[-1] :]).astype(np.float64)
        best = np.minimum(best, rice.estimate_rows(u, bounds))
    return best


def _plan_coded(x: np.ndarray, width: int) -> tuple:
    """(bits, plan) of one coded channel; the plan is what :func:`_write_channel` writes."""
    if np.all(x == x[0]):
        return TYPE_BITS, (CONSTANT, int(x[0]))
    shift = _wasted_bits(x)
    bits, order, depth, plan, warm, coefs = _plan_channel(x >> shift, width - shift)
    return bits + TYPE_BITS + SHIFT_BITS + ORDER_BITS, (
        FIXED,
        shift,
        order,
        depth,
        plan,
        warm,
        coefs,
    )


def _write_channel(w: rice.BitWriter, planned: tuple, width: int) -> None:
    """One coded channel of ``width``-bit signed samples, as :func:`_plan_coded` planned it."""
    if planned[0] == CONSTANT:
        w.write(CONSTANT, TYPE_BITS)
        w.write_signed(planned[1], width)
        return
    _, shift, order, depth, plan, warm, coefs = planned
    w.write(ADAPTIVE if coefs is not None else LIFTED if depth else FIXED, TYPE_BITS)
    w.write(shift, SHIFT_BITS)
    w.write(order, ORDER_BITS)
    if order:
        wz = rice.zigzag(warm)
        ww = rice.bit_length(wz)
        w.write(ww, WARMUP_WIDTH_BITS)
        w.write_array(wz, ww)
    if coefs is not None:
        cz = rice.zigzag(coefs)
        cwid = rice.bit_length(cz)
        w.write(cwid, COEF_WIDTH_BITS)
        w.write_array(cz, cwid)
    if depth:
        w.write(depth, LIFT_BITS)
        plan.write(w)
    else:
        rice.write(w, plan)


def _decode_channel(r: rice.BitReader, n: int, width: int) -> np.ndarray:
    kind = r.read(TYPE_BITS)
    if kind == CONSTANT:
        return np.full(n, r.read_signed(width), dtype=np.int64)
    if kind not in (FIXED, LIFTED, ADAPTIVE):
        raise CodecError(f"corrupt lossless payload: subframe type {kind}")
    shift = r.read(SHIFT_BITS)
    order = r.read(ORDER_BITS)
    if shift >= width or order > MAX_FIXED_ORDER or order >= n:
        raise CodecError(f"corrupt lossless payload: shift {shift}, order {order} for {n} samples")
    cw = width - shift
    warm = np.zeros(order, dtype=np.int64)
    if order:
        ww = r.read(WARMUP_WIDTH_BITS)
        if ww > cw + order + 1:
            raise CodecError(f"corrupt lossless payload: warm-up width {ww}")
        warm = rice.unzigzag(r.read_array(np.full(order, ww, dtype=np.int64)))
    m = n - order
    if kind == FIXED:
        residual = rice.decode(r, m, max_width=cw + order + 1)
    else:
        coefs = None
        if kind == ADAPTIVE:
            cwid = r.read(COEF_WIDTH_BITS)
            if cwid > MAX_COEF_WIDTH or m < 2:
                raise CodecError(f"corrupt lossless payload: coefficient width {cwid}")
            coefs = rice.unzigzag(r.read_array(np.full(ADAPT_TAPS, cwid, dtype=np.int64)))
        depth = r.read(LIFT_BITS)
        if depth not in LIFT_DEPTHS:
            raise CodecError(f"corrupt lossless payload: lifting depth {depth}")
        sizes = wavelet.band_sizes(m, depth) if coefs is None else _adaptive_sizes(m, depth)
        base = np.concatenate([[0], np.cumsum(sizes)])
        joined = rice.decode_split(r, base, max_width=_band_width(cw, order, depth))
        bands = np.split(joined, base[1:-1])
        if coefs is None:
            residual = wavelet.packet_inverse(bands, m, depth, integer=True)
        else:
            residual = _adaptive_inverse(bands, m, depth, coefs)
    x = _unfixed(warm, residual, cw)
    low, high = -(1 << (cw - 1)), (1 << (cw - 1)) - 1
    if int(x.min()) < low or int(x.max()) > high:
        raise CodecError("corrupt lossless payload: a sample out of range")
    return x << shift


def _unstereo(a: np.ndarray, b: np.ndarray, mode: int) -> tuple[np.ndarray, np.ndarray]:
    if mode == INDEPENDENT:
        return a, b
    if mode == LEFT_SIDE:
        return a, a - b
    if mode == SIDE_RIGHT:
        return a + b, b
    left = a + ((b + (b & 1)) >> 1)
    return left, left - b


def _header(depth: int, mode: int, verbatim: bool, channels: int) -> int:
    return (
        (VERSION << 6) | ((depth == 24) << 5) | (mode << 3) | (verbatim << 2) | (channels - 1) << 1
    )


def encode_ints(x: np.ndarray, depth: int) -> bytes:
    """One block of ``depth``-bit signed integers shaped (frames, channels) -> payload."""
    if depth not in DEPTHS:
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
        cost = dict(zip(cands, _quick_costs(np.stack(list(cands.values()))).tolist(), strict=True))
        pairs = {INDEPENDENT: "LR", LEFT_SIDE: "LS", SIDE_RIGHT: "SR", MID_SIDE: "MS"}
        ranked = sorted(pairs, key=lambda m: cost[pairs[m][0]] + cost[pairs[m][1]])[:STEREO_TRIES]
        plans = {c: _plan_coded(cands[c], widths[c]) for m in ranked for c in pairs[m]}
        mode = min(ranked, key=lambda m: plans[pairs[m][0]][0] + plans[pairs[m][1]][0])
        w.write(_header(depth, mode, False, channels), 8)
        for name in pairs[mode]:
            _write_channel(w, plans[name][1], widths[name])
    else:
        w.write(_header(depth, INDEPENDENT, False, channels), 8)
        _write_channel(w, _plan_coded(x[:, 0], depth)[1], depth)
    verbatim_bits = 8 + frames * channels * depth
    if w.bits <= verbatim_bits:
        return w.to_bytes()
    v = rice.BitWriter()
    v.write(_header(depth, INDEPENDENT, True, channels), 8)
    v.write_array(x.ravel() & ((1 << depth) - 1), depth)
    return v.to_bytes()


def _is_side(mode: int, index: int) -> bool:
    return (mode in (LEFT_SIDE, MID_SIDE) and index == 1) or (mode == SIDE_RIGHT and index == 0)


def decode_ints(payload: bytes, frames: int, channels: int) -> tuple[np.ndarray, int]:
    """(int64 samples shaped (frames, channels), depth) from one payload, or CodecError."""
    if not payload:
        raise CodecError("empty lossless payload")
    head = payload[0]
    if head >> 6 != VERSION or head & 1:
        raise CodecError(f"not an rtai lossless payload (header byte {head:#04x})")
    depth = 24 if head >> 5 & 1 else 16
    mode = head >> 3 & 3
    verbatim = bool(head >> 2 & 1)
    got_channels = (head >> 1 & 1) + 1
    if got_channels != channels:
        raise CodecError(f"lossless payload of {got_channels} channels, expected {channels}")
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
    coded = []
    for i in range(channels):
        width = depth + 1 if (channels == 2 and _is_side(mode, i)) else depth
        coded.append(_decode_channel(r, frames, width))
    r.finish()
    if channels == 2:
        left, right = _unstereo(coded[0], coded[1], mode)
        x = np.stack([left, right], axis=1)
    else:
        x = coded[0][:, None]
    lo, hi = -(1 << (depth - 1)), (1 << (depth - 1)) - 1
    if int(x.min()) < lo or int(x.max()) > hi:
        raise CodecError("corrupt lossless payload: a sample out of range")
    return x, depth


# --- codec classes ----------------------------------------------------------------------

_SCALE24 = float(1 << 23)


class LosslessEncoder:
    """float32 blocks (frames, channels) -> lossless payloads on the 24-bit grid."""

    lookahead_frames = 0  # no look-ahead: a block is coded from itself alone

    def __init__(
        self,
        rate_hz: int,
        channels: int,
        block_frames: int,
        settings: EncoderSettings | None = None,
    ) -> None:
        reason = check(rate_hz, channels, block_frames)
        if reason:
            raise CodecError(reason)
        self.channels = channels
        self.block_frames = block_frames
        self._scaled = np.empty((block_frames, channels), dtype=np.float64)

    def encode(self, block: np.ndarray) -> bytes:
        if block.shape != self._scaled.shape:
            raise CodecError(f"block shape {block.shape}, expected {self._scaled.shape}")
        np.multiply(block, _SCALE24, out=self._scaled)
        np.rint(self._scaled, out=self._scaled)
        np.clip(self._scaled, -_SCALE24, _SCALE24 - 1, out=self._scaled)
        return encode_ints(self._scaled.astype(np.int64), CODEC_DEPTH)

    def configure(self, settings: EncoderSettings) -> None:
        """Lossless has no rate to tune: the signal decides the size."""


class LosslessDecoder(StandaloneDecoder):
    """Decodes lossless payloads and conceals missing blocks (see :mod:`rtai.dsp.conceal`)."""

    def __init__(self, rate_hz: int, channels: int, block_frames: int) -> None:
        reason = check(rate_hz, channels, block_frames)
        if reason:
            raise CodecError(reason)
        super().__init__(rate_hz, channels, block_frames)

    def _decode_block(self, payload: bytes) -> np.ndarray:
        x, depth = decode_ints(bytes(payload), self.block_frames, self.channels)
        return (x.astype(np.float64) / float(1 << (depth - 1))).astype(np.float32)
