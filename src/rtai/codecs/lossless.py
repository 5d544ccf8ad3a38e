"""rtai lossless: bit-exact low-delay coding of one block per packet (pure).

Every packet stands alone (no state crosses packets, no look-ahead past the block),
so a lost packet costs its own block and nothing else. The coder, per block:

1. Integers: the float block is put on the 24-bit grid (x 2**23, rounded, clipped);
   a block of 16-bit audio lands on multiples of 256 and is coded as a 16-bit block
   (the header's depth bit; the decoder scales by the depth it reads), so 16-bit
   input costs 16-bit rates: no shift fields, and a mid channel without the low bit
   that the 24-bit grid would give it. Other blocks with common zero low bits lose
   them in the "wasted bits" step below.
2. Inter-channel decorrelation (stereo): of left/right, left/side, side/right and
   mid/side (side = L - R, mid = (L + R) >> 1), the pair with the lowest estimated
   cost is coded (each channel estimated by its best polynomial residual, all four
   channels and five orders in one pass). Then, when it pays, the second channel of
   the pair is coded as its difference from a prediction from the first: a 3-tap
   filter (lags -1, 0, +1, which the decoder can use because it has the whole first
   channel before the second) fitted by least squares on the block's first
   differences, coefficients over 2**8 sent. No recursion: the decoder adds the
   prediction to the decoded difference in one array operation.
3. Per coded channel: a constant block is one value; otherwise the common zero low
   bits are shifted out and a polynomial predictor of order 0..4 (the k-th
   difference of the signal) whitens it. The first k samples are the 0th..(k-1)th
   differences at the block start ("warm-up"), sent at one width. When it pays, an
   integer lifting wavelet packet of depth 1..4 (:mod:`rtai.dsp.wavelet`) then splits
   the residual into bands that get their own Rice parameters, which takes up much
   of the spectral shape an LPC filter would. Its steps are long (``BANK``: the
   20-tap Lagrange midpoint interpolator for both the predict and the update step),
   close to an ideal half-band split: 0.2-6 % smaller packets than the (9,7)-M
   steps of version 3. An interpolating predictor, which unlike LPC's needs no recursion
   to invert. The format also has a packet whose first split predicts each odd
   sample from its 8 or 12 even neighbours with the block's own least-squares
   coefficients (symmetric: 4 or 6 sent, over 2**7, as differences from the (9,7)-M
   predict step), and whose second split down the low band may get its own fitted
   step as well; over the long fixed steps these buy under 0.1 %, so the encoder
   tries them only when FITTED is set (then in mono blocks from 480 frames, over
   polynomial orders 0..3).
   Candidates are ranked by estimates (exact Rice costs of two parameters per
   partition, every candidate of a kind in one NumPy call; the fitted steps of every
   order solved as one batch) and the best are costed exactly (the polynomial coding
   only when its estimate is within EXACT_MARGIN bits of the lifting one, or
   EXACT_MARGIN_SHORT bits in a block under 256 frames). The
   search grows with the time a block has: lifting at depth 1..2 over the best order
   and the two below it from 128 frames; from 256 (128 in a mono block) the two best
   lifting estimates costed exactly; from 256 depth 1..3; from 480 depth 4 too and,
   in a mono block, more candidates of each kind (with FITTED, the three best fitted
   estimates costed exactly).
   The decoder inverts the lifting steps on whole arrays and the differences with
   cumulative sums: no loop over samples. (Why not LPC: its exact decoder is a
   recursion over samples; docs/benchmarks.md, the "decorrelation" table of
   bench/codecs.py, measures what it would buy.) For speed, the channels a stereo block
   plans (its pair and a cross-predicted residual) are planned together, their
   estimates, lifting splits and packets in NumPy calls over all of them, each channel's
   plan the one it gets alone; the decoder inverts the channels' lifting packets together.
4. Residuals: partitioned adaptive Rice with half-step parameters (a parameter may
   double the first bucket of the one below, which fits the near-Gaussian residuals
   of noisy material better; :mod:`rtai.codecs.rice`).
5. If all that would be bigger than the samples themselves, the packet is verbatim.

The bitstream is described in docs/protocol.md (RTP, "rtai lossless"). The
decoder checks every field and range and raises :class:`CodecError` on anything
that is not a well-formed block of the negotiated shape.
"""

from __future__ import annotations

import itertools

import numpy as np

from rtai.codecs import CodecError, EncoderSettings, rice
from rtai.codecs.standalone import StandaloneDecoder
from rtai.dsp import wavelet

LOSSLESS_PAYLOAD_TYPE = 100
VERSION = 4  # 2: Rice sequences with half-step parameters; 3: lifting depths 1..4;
# 4: the longer lifting steps of wavelet.LONG
HEADER_VERSION = VERSION & 3  # the header's 2-bit version field (0 for version 4)
MAX_FIXED_ORDER = 4
DEPTHS = (16, 24)
CODEC_DEPTH = 24  # the float path always codes on the 24-bit grid
HALF_STEPS = True  # Rice parameters in half steps (rice.py; bench/codecs.py may turn it off)
MIN_PARTITION = 16  # values per Rice partition at least (polynomial residuals)
MIN_BAND_PART = 8  # and per part of a lifting band

# Stereo modes: which two channels are coded.
INDEPENDENT, LEFT_SIDE, SIDE_RIGHT, MID_SIDE = range(4)

STEREO_PAIRS = {INDEPENDENT: "LR", LEFT_SIDE: "LS", SIDE_RIGHT: "SR", MID_SIDE: "MS"}
STEREO_TRIES = 1  # stereo pairs costed exactly, the best by estimate first

# Subframe types.
CONSTANT, FIXED, LIFTED, ADAPTIVE = range(4)
TYPE_BITS = 2
SHIFT_BITS = 5  # a shift is sent as one flag bit, then these bits when it is not zero
ORDER_BITS = 3
WARMUP_WIDTH_BITS = 5
LIFT_BITS = 2  # the depth less one
LIFT_DEPTHS = (1, 2, 3, 4)
BANK = wavelet.LONG  # the lifting steps: the 20-tap Lagrange midpoint interpolator for
# predict and update (version 4; the (9,7)-M steps before: 0.2-6 % bigger packets)
LIFT_FRAMES = 128  # from this block length on, the lifting stage is tried (at 128 frames
# 1-2 % smaller packets than polynomial prediction alone, 10 % on tonal material)
WIDE_FRAMES = 128  # and from this one on, over the best predictor order and two below
EXACT_MARGIN = 20  # a polynomial coding is costed exactly only when its estimate is
# within this many bits of the best lifting estimate (the estimates are that close: 6-11 %
# of the coding time at 128 frames saved for < 0.01 % in size, 10 % at 480 for none)
EXACT_MARGIN_SHORT = 8  # (and below LIFT_TRIES_FRAMES: the long lifting steps of version
# 4 cost time, which this gives back at 128 frames, 5 % of a stereo block's, for 0.03 %)
FITTED = False  # the encoder tries the block's own predict steps (type 3): over the long
# steps of BANK they buy under 0.1 % (speech, mono, 480 frames; nothing on music) for
# twice a mono block's coding time (over the (9,7)-M steps of version 3 they bought 2-6 %)
ADAPT_FRAMES = 480  # (from this block length on, in mono blocks)
ADAPT_STEREO = False  # (and in the channels of a stereo block: 0.03 % for 40 % more time)
ADAPT_TAPS = (8, 12)  # taps of that predict step (even neighbours of each odd sample,
# symmetric: one coefficient sent per pair mirrored about the sample); a bit says which
ADAPT_WIDE_FRAMES = 480  # the encoder tries the 12 too from this block length on
ADAPT_LEVELS = 2  # fitted predict steps down the low-band chain: up to 2 from
# THOROUGH_FRAMES on, 1 below (the packet says how many: a second fitted step is one bit)
ADAPT_LIMIT = 1 << 40  # no intermediate low band may reach this magnitude
ADAPT_PRECISION = 7  # its coefficients are integers over 2**7 (coarse: they cost bits)
ADAPT_ORDERS = (1, 2, 3)  # polynomial orders it is tried over (the higher ones pay on
# tonal, steeply low-pass material: 4 % smaller solo piano at 256 and 480 frames)
ADAPT_ORDERS_THOROUGH = (0, 1, 2, 3)  # and from ADAPT_ORDERS_FRAMES on
COEF_WIDTH_BITS = 5
MAX_COEF_WIDTH = 17  # zigzagged: |coefficient| < 2**16
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
# Cross-channel prediction (stereo): the second coded channel minus a short FIR of the
# first, whose whole block the decoder already has, so taps either side of the sample.
CROSS_PREDICTION = True  # (bench/codecs.py turns it off to measure what it buys)
CROSS_FITTED_FRAMES = 480  # from this length on, the residual may use fitted lifting
CROSS_LR_FRAMES = 256  # from this length on, left/right with right from left is tried too
CROSS_GATE = 16.0  # bits: see _fit_cross (3 % of a stereo block's coding time at 128
# frames saved for 0.02 % in size)
XPRED_REACH = 1  # taps at lags -1..1
XPRED_TAPS = 2 * XPRED_REACH + 1
XPRED_PRECISION = 8  # coefficients are integers over 2**8
XPRED_COEF_WIDTH_BITS = 4
MAX_XPRED_COEF_WIDTH = XPRED_PRECISION + 4  # zigzagged: |coefficient| <= 8 * 2**XPRED_PRECISION
XPRED_GROWTH = XPRED_TAPS.bit_length() + 3  # bits the prediction can add to the width


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


def _shift_bits(shift: int) -> int:
    return 1 + SHIFT_BITS if shift else 1


def _write_shift(w: rice.BitWriter, shift: int) -> None:
    w.write(int(shift > 0), 1)
    if shift:
        w.write(shift, SHIFT_BITS)


def _read_shift(r: rice.BitReader) -> int:
    return r.read(SHIFT_BITS) if r.read(1) else 0


def _zigzags(values: np.ndarray) -> tuple[list[int], int]:
    """(:func:`rice.zigzag` of a few int64 values, as Python ints; the bits of the
    largest): no NumPy call, which costs more than a few values' Python."""
    z = [(v << 1) ^ (v >> 63) for v in values.tolist()]
    return z, max(z).bit_length() if z else 0


def _write_few(w: rice.BitWriter, values: np.ndarray, width_bits: int) -> None:
    """A few signed values: their zigzagged width in ``width_bits`` bits, then each at it
    (the same bits as one write_array of the zigzagged values)."""
    z, width = _zigzags(values)
    w.write(width, width_bits)
    for v in z:
        w.write(v, width)


def _read_few(r: rice.BitReader, count: int, width: int) -> np.ndarray:
    """``count`` zigzagged fields of ``width`` bits (:func:`_write_few`) as int64."""
    values = [r.read(width) for _ in range(count)]
    return np.array([(v >> 1) ^ -(v & 1) for v in values], dtype=np.int64)  # unzigzag


def _warmup_bits(warm: np.ndarray) -> int:
    return _warm_bits_of(warm.tolist())


def _warm_bits_of(values: list[int]) -> int:
    """:func:`_warmup_bits` of Python ints (no NumPy call: hot in the encoder)."""
    if not values:
        return 0
    top = max((v << 1) ^ (v >> 63) for v in values)
    return WARMUP_WIDTH_BITS + len(values) * top.bit_length()


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
    coefs = np.rint(h * (1 << ADAPT_PRECISION)).astype(np.int64) - _default_sent(half)
    if rice.bit_length(rice.zigzag(coefs)) > MAX_COEF_WIDTH:
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
        sent = np.rint(np.clip(h, -1e9, 1e9) * (1 << ADAPT_PRECISION)).astype(np.int64)
        sent -= _default_sent(pairs)
        top = np.maximum(2 * sent.max(axis=1), -2 * sent.min(axis=1) - 1)  # widest zigzag
        out[taps] = [
            (row, COEF_WIDTH_BITS + pairs * wid) if wid <= MAX_COEF_WIDTH else None
            for row, wid in zip(sent, [t.bit_length() for t in top.tolist()], strict=True)
        ]
    return out


def _default_sent(count: int) -> np.ndarray:
    """What is sent for the fixed (9,7)-M predict step, (-1, 9, 9, -1) / 16, nearest
    pair first: the sent coefficients are the differences from it, small numbers."""
    fixed = np.zeros(count, dtype=np.int64)
    fixed[:2] = np.array([9, -1]) << (ADAPT_PRECISION - 4)
    return fixed


def _taps(sent: np.ndarray) -> np.ndarray:
    """The predict step's taps (farthest left neighbour first) from the sent values."""
    coefs = sent + _default_sent(sent.size)
    return np.concatenate([coefs[::-1], coefs])


def _adaptive_bands(r: np.ndarray, coefs: list, depth: int) -> list[np.ndarray] | None:
    """The packet bands of r whose first len(coefs) splits down the low-band chain use
    ``coefs`` as their predict steps; None if a low band grows past ADAPT_LIMIT."""
    if not coefs:
        return wavelet.packet_forward(r, depth, integer=True, bank=BANK)
    s, d = wavelet.split_int_pred(r, _taps(coefs[0]), ADAPT_PRECISION, BANK)
    if s.size and int(np.abs(s).max()) >= ADAPT_LIMIT:
        return None
    low = _adaptive_bands(s, coefs[1:], depth - 1)
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
    return wavelet.merge_int_pred(s, d, _taps(coefs[0]), ADAPT_PRECISION, BANK)


class _Channel:
    """One channel being planned (samples without their wasted bits): its polynomial
    residuals, warm-up costs, estimates and the candidate codings to cost exactly."""

    def __init__(self, x: np.ndarray, width: int, fitted: bool, mono: bool) -> None:
        n = x.size
        self.width, self.mono = width, mono
        self.diffs = diffs = [x]
        for _ in range(min(MAX_FIXED_ORDER, n - 1)):
            diffs.append(diffs[-1][1:] - diffs[-1][:-1])
        self.firsts = firsts = [int(d[0]) for d in diffs]
        self.warm_bits = [_warm_bits_of(firsts[:k]) for k in range(len(diffs))]
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
            plan = rice.Plan(self.diffs[k], min_partition=MIN_PARTITION, half=HALF_STEPS)
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
        [ch.diffs[k] for ch, k, _ in lifts], [depth for _, _, depth in lifts], BANK
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
    plan = rice.BoundsPlan(np.concatenate(bands), base, MIN_BAND_PART, half=HALF_STEPS)
    bits = plan.bits + ch.warm_bits[k] + LIFT_BITS
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
        low, high = wavelet.split_int_ragged(x, lengths, BANK)
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
    tap_counts = ADAPT_TAPS if n >= ADAPT_WIDE_FRAMES else ADAPT_TAPS[:1]
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
        taps_cols = np.stack([_taps(fits[taps][j][0]) for j in which], axis=1)
        s1, d1 = wavelet.split_int_pred_cols(ends[:, which], taps_cols, ADAPT_PRECISION, BANK)
        cols.append(np.stack([s1, d1], axis=2).reshape(s1.shape[0], 2 * len(which)))
    if not groups:
        return []
    firsts = len(groups)
    mat = np.concatenate(cols, axis=1)  # group g's low and high bands: columns 2g, 2g + 1
    owners = np.repeat(np.arange(firsts), 2)
    mats, tags = [], []
    for depth in depths:
        if depth > 1:
            low, high = wavelet.split_int(mat, BANK)
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
                        taps_cols = np.stack([_taps(fits[taps][g][0]) for g in which], axis=1)
                        lows = mat[:, [2 * g for g in which]]
                        s2, d2 = wavelet.split_int_pred_cols(lows, taps_cols, ADAPT_PRECISION, BANK)
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
    bands = _adaptive_bands(diffs[k], coefs, depth)
    if bands is None:
        return best
    joined = np.concatenate(bands)
    if rice.bit_length(rice.zigzag(joined)) > _band_width(width, k, depth):
        return best  # the decoder would refuse values this wide
    base = np.concatenate([[0], np.cumsum([b.size for b in bands])])
    plan = rice.BoundsPlan(joined, base, MIN_BAND_PART, half=HALF_STEPS)
    bits = plan.bits + warm_bits[k] + LIFT_BITS + (depth > 1) + 1 + extra
    if best is not None and bits >= best[0]:
        return best
    return (bits, k, depth, plan, _warm(firsts, k), coefs)


def _coef_bits(c: np.ndarray) -> int:
    """Bits of one sent set of fitted coefficients (width field and values)."""
    return COEF_WIDTH_BITS + c.size * rice.bit_length(rice.zigzag(c))


def _column_costs(mats: list[np.ndarray]) -> np.ndarray:
    """Estimated bits of each column of each matrix (one Rice parameter each), in one
    call: all columns laid end to end as the partitions of one row."""
    flat = np.concatenate([mat.T.ravel() for mat in mats])
    lengths = np.concatenate([np.full(mat.shape[1], mat.shape[0]) for mat in mats])
    bounds = np.concatenate([[0], np.cumsum(lengths)])
    return rice.estimate_parts(rice.zigzag(flat)[None, :], bounds)[0]


def _band_width(width: int, order: int, depth: int) -> int:
    """The widest (zigzagged) band value a lifted residual of this channel may have."""
    return width + order + 2 + depth


def _order_estimates(rows: np.ndarray) -> np.ndarray:
    """Estimated Rice bits (orders, rows) of each polynomial order's residual of each
    row, over the last n - 4 values (warm-up not counted), all in one call."""
    n = rows.shape[1]
    top = min(MAX_FIXED_ORDER, n - 1)
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
    """(bits, plan) of one coded channel; the plan is what :func:`_write_channel` writes.
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
            out[i] = (TYPE_BITS, (CONSTANT, int(x[0])))
            continue
        shift = _wasted_bits(x)
        coded.append((x >> shift, width - shift, fitted, est))
        shifts.append(shift)
        where.append(i)
    planned = _plan_channels(coded, mono) if coded else []
    for i, shift, (bits, order, depth, plan, warm, coefs) in zip(
        where, shifts, planned, strict=True
    ):
        bits += TYPE_BITS + _shift_bits(shift) + ORDER_BITS
        out[i] = (bits, (FIXED, shift, order, depth, plan, warm, coefs))
    return out


def _cross_width(width_a: int, width_b: int) -> int:
    """The width of a cross-predicted second channel (b minus the prediction from a)."""
    return max(width_b, width_a + XPRED_GROWTH) + 1


def _cross_pred(a: np.ndarray, coefs: np.ndarray) -> np.ndarray:
    """round(sum_j coefs[j] a[i + j] / 2**XPRED_PRECISION) for j = -reach..reach, the
    block's first and last values repeated past its ends."""
    m, n = XPRED_REACH, a.size
    padded = np.concatenate([np.repeat(a[:1], m), a, np.repeat(a[-1:], m)])
    acc = np.full(n, 1 << (XPRED_PRECISION - 1), dtype=np.int64)
    for j, c in enumerate(coefs.tolist()):
        acc += c * padded[j : j + n]
    return acc >> XPRED_PRECISION


def _fit_cross(a: np.ndarray, b: np.ndarray) -> np.ndarray | None:
    """Quantised least-squares coefficients predicting b from a (their first
    differences, so that low frequencies do not dominate the fit); None when they
    are all zero or do not fit their field, or when the fit takes out too little of
    b's energy to pay for them (a Gaussian's bits fall by half the log2 of the energy
    ratio per value: under CROSS_GATE bits in all, the block is not tried further)."""
    da, db = a[1:] - a[:-1], b[1:] - b[:-1]
    m = XPRED_REACH
    rows = da.size - 2 * m
    if rows < 4 * XPRED_TAPS:
        return None
    lagged = np.stack([da[j : j + rows] for j in range(XPRED_TAPS)]).astype(np.float64)
    y = db[m : m + rows].astype(np.float64)
    h = _least_squares(lagged.T, y)
    if h is None:
        return None
    energy = float(y @ y)
    left = y - h @ lagged
    if 0.5 * rows * np.log2((energy + 1.0) / (float(left @ left) + 1.0)) < CROSS_GATE:
        return None
    coefs = np.rint(h * (1 << XPRED_PRECISION)).astype(np.int64)
    if not coefs.any() or _zigzags(coefs)[1] > MAX_XPRED_COEF_WIDTH:
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
    r = sb - _cross_pred(sa, coefs)
    extra = _shift_bits(shift) + XPRED_COEF_WIDTH_BITS + XPRED_TAPS * _zigzags(coefs)[1]
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
    tries = [mode] if mode == INDEPENDENT or frames < CROSS_LR_FRAMES else [mode, INDEPENDENT]
    found = []
    for m in tries:
        first, second = STEREO_PAIRS[m]
        cand = _cross_candidate(cands[first], cands[second])
        if cand is not None:
            found.append((cost[first] + cost[second] - cand[0], m, cand))
    chosen = cost[STEREO_PAIRS[mode][0]] + cost[STEREO_PAIRS[mode][1]]
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
        first, second = STEREO_PAIRS[m]
        if first not in plans:
            jobs.setdefault(first, (cands[first], widths[first], True, column[first]))
        fitted = r.size >= CROSS_FITTED_FRAMES  # the fitted lifting step for r too
        jobs["X"] = (r, _cross_width(widths[first], widths[second]), fitted, est)
    plans.update(zip(jobs, _plan_coded_many(list(jobs.values())), strict=True))
    return plans


def _choose_cross(plans: dict, mode: int, pick: tuple | None) -> tuple:
    """(mode, cross plan or None): the chosen pair ``mode`` as it is, or the cross-channel
    prediction ``pick`` when its exact plans (:func:`_plan_stereo`) cost less."""
    first, second = STEREO_PAIRS[mode]
    best = (plans[first][0] + plans[second][0], mode, None)
    if pick is not None:
        m, (_, shift, coefs, _, extra, _) = pick
        bits, planned = plans["X"]
        total = plans[STEREO_PAIRS[m][0]][0] + bits + extra
        if total < best[0]:
            best = (total, m, (planned, shift, coefs))
    return best[1], best[2]


def _write_channel(w: rice.BitWriter, planned: tuple, width: int) -> None:
    """One coded channel of ``width``-bit signed samples, as :func:`_plan_coded` planned it."""
    if planned[0] == CONSTANT:
        w.write(CONSTANT, TYPE_BITS)
        w.write_signed(planned[1], width)
        return
    _, shift, order, depth, plan, warm, coefs = planned
    w.write(ADAPTIVE if coefs is not None else LIFTED if depth else FIXED, TYPE_BITS)
    _write_shift(w, shift)
    w.write(order, ORDER_BITS)
    if order:
        _write_few(w, warm, WARMUP_WIDTH_BITS)
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
    joined = rice.decode_split(r, base, max_width=_band_width(cw, order, depth), half=HALF_STEPS)
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


def _header(depth: int, mode: int, verbatim: bool, channels: int, cross: bool = False) -> int:
    return (
        (HEADER_VERSION << 6)
        | ((depth == 24) << 5)
        | (mode << 3)
        | (verbatim << 2)
        | (channels - 1) << 1
        | cross
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
        # Estimated without each channel's wasted bits (the trailing zeros of the or of
        # its values, as _wasted_bits), as it is coded: the estimates of every order
        # are reused by the channels' plans.
        rows = np.stack(list(cands.values()))
        ors = np.bitwise_or.reduce(rows, axis=1).tolist()
        rows >>= np.array([(v & -v).bit_length() - 1 if v else 0 for v in ors])[:, None]
        table = _order_estimates(rows)
        column = dict(zip(cands, table.T, strict=True))
        cost = dict(zip(cands, table.min(axis=0).tolist(), strict=True))
        pairs = STEREO_PAIRS
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
        w.write(_header(depth, mode, False, channels, cross is not None), 8)
        _write_channel(w, plans[first][1], widths[first])
        if cross is None:
            _write_channel(w, plans[second][1], widths[second])
        else:
            planned, shift, coefs = cross
            _write_shift(w, shift)
            _write_few(w, coefs, XPRED_COEF_WIDTH_BITS)
            _write_channel(w, planned, _cross_width(widths[first], widths[second]))
    else:
        w.write(_header(depth, INDEPENDENT, False, channels), 8)
        _write_channel(w, _plan_coded(x[:, 0], depth, mono=True)[1], depth)
    verbatim_bits = 8 + frames * channels * depth
    if w.bits <= verbatim_bits:
        return w.to_bytes()
    v = rice.BitWriter()
    v.write(_header(depth, INDEPENDENT, True, channels), 8)
    v.write_array(x.ravel() & ((1 << depth) - 1), depth)
    return v.to_bytes()


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
    b = ((residual >> shift) + _cross_pred(a >> shift, coefs)) << shift
    low, high = -(1 << (width_b - 1)), (1 << (width_b - 1)) - 1
    if int(b.min()) < low or int(b.max()) > high:
        raise CodecError("corrupt lossless payload: a cross-predicted sample out of range")
    return b


def _is_side(mode: int, index: int) -> bool:
    return (mode in (LEFT_SIDE, MID_SIDE) and index == 1) or (mode == SIDE_RIGHT and index == 0)


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
        fields.append(_read_channel(r, frames, _cross_width(widths[0], widths[1])))
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
        x = self._scaled.astype(np.int64)
        if not (x & 0xFF).any():  # 16-bit audio: a 16-bit block, the same floats decoded
            return encode_ints(x >> 8, 16)
        return encode_ints(x, CODEC_DEPTH)

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
