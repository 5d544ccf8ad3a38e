"""rtai lossless: bit-exact low-delay coding of one block per packet (pure).

Every packet stands alone (no state crosses packets, no look-ahead past the block),
so a lost packet costs its own block and nothing else. The coder, per block:

1. Integers: the float block is put on the 24-bit grid (x 2**23, rounded, clipped);
   16-bit audio lands on multiples of 256 and the "wasted bits" step below takes
   those 8 zero bits back out, so 16-bit input costs 16-bit rates.
2. Inter-channel decorrelation (stereo): of left/right, left/side, side/right and
   mid/side (side = L - R, mid = (L + R) >> 1), the pair with the lowest estimated
   cost is coded.
3. Per coded channel: a constant block is one value; otherwise the common zero low
   bits are shifted out and a polynomial predictor of order 0..4 (the k-th
   difference of the signal) whitens it. The first k samples are the 0th..(k-1)th
   differences at the block start ("warm-up"), sent at one width. When it pays, an
   integer lifting wavelet packet of depth 1..3 (:mod:`rtai.dsp.wavelet`) then splits
   the residual into bands that get their own Rice parameters, which takes up much
   of the spectral shape an LPC filter would. Candidates are ranked by quick
   estimates and the best are costed exactly. The search grows with the block:
   polynomial only below 256 frames, lifting from 256, more candidates from 480.
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
from rtai.dsp import wavelet
from rtai.dsp.conceal import Concealer

LOSSLESS_PAYLOAD_TYPE = 100
VERSION = 1
MAX_FIXED_ORDER = 4
DEPTHS = (16, 24)
CODEC_DEPTH = 24  # the float path always codes on the 24-bit grid

# Stereo modes: which two channels are coded.
INDEPENDENT, LEFT_SIDE, SIDE_RIGHT, MID_SIDE = range(4)

# Subframe types.
CONSTANT, FIXED, LIFTED = range(3)
TYPE_BITS = 2
SHIFT_BITS = 5
ORDER_BITS = 3
WARMUP_WIDTH_BITS = 5
LIFT_BITS = 2
LIFT_DEPTHS = (1, 2, 3)
LIFT_FRAMES = 256  # from this block length on, the lifting stage is tried
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


def _plan_channel(x: np.ndarray) -> tuple[int, int, int, object, np.ndarray]:
    """The cheapest coding of one (shifted) channel: (bits, order, lift depth, plan, warm-up).

    Candidates are ranked by quick estimates (every polynomial order; the lifting
    packet at each depth over the residual of the best order and the one below), and
    the best of each kind is then costed exactly."""
    n = x.size
    diffs = [x]
    for _ in range(min(MAX_FIXED_ORDER, n - 1)):
        diffs.append(np.diff(diffs[-1]))
    firsts = [int(d[0]) for d in diffs]
    warms = [np.array(firsts[:k], dtype=np.int64) for k in range(len(diffs))]
    warm_bits = [_warmup_bits(w) for w in warms]
    est = [
        rice.estimate_bounds(d, rice.partition_bounds(d.size, 3 if d.size >= 64 else 0))
        + warm_bits[k]
        for k, d in enumerate(diffs)
    ]
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
            best = (bits, k, 0, plan, warms[k])
    top = best[1]
    lifted = []
    for k in sorted({top, max(top - 1, 0)}) if thorough else (top,):
        bands = [diffs[k]]
        for depth in depths:  # each depth splits the last one's bands (order aside)
            if diffs[k].size < wavelet.MIN_SPLIT << depth:
                break
            bands = [part for b in bands for part in wavelet.split_int(b)]
            base = np.concatenate([[0], np.cumsum([b.size for b in bands])])
            guess = rice.estimate_bounds(np.concatenate(bands), base) + warm_bits[k]
            lifted.append((guess, k, depth))
    lifted.sort()
    for guess, k, depth in lifted[:tries]:
        if tries == 1 and guess >= est[top]:
            break
        bands = wavelet.packet_forward(diffs[k], depth, integer=True)
        base = np.concatenate([[0], np.cumsum([b.size for b in bands])])
        plan = rice.BoundsPlan(np.concatenate(bands), base)
        bits = plan.bits + warm_bits[k] + LIFT_BITS
        if bits < best[0]:
            best = (bits, k, depth, plan, warms[k])
    return best


def _encode_channel(w: rice.BitWriter, x: np.ndarray, width: int) -> None:
    """One coded channel of ``width``-bit signed samples."""
    if np.all(x == x[0]):
        w.write(CONSTANT, TYPE_BITS)
        w.write_signed(int(x[0]), width)
        return
    shift = _wasted_bits(x)
    _, order, depth, plan, warm = _plan_channel(x >> shift)
    w.write(LIFTED if depth else FIXED, TYPE_BITS)
    w.write(shift, SHIFT_BITS)
    w.write(order, ORDER_BITS)
    if order:
        wz = rice.zigzag(warm)
        ww = rice.bit_length(wz)
        w.write(ww, WARMUP_WIDTH_BITS)
        w.write_array(wz, ww)
    if depth:
        w.write(depth, LIFT_BITS)
        plan.write(w)
    else:
        rice.write(w, plan)


def _decode_channel(r: rice.BitReader, n: int, width: int) -> np.ndarray:
    kind = r.read(TYPE_BITS)
    if kind == CONSTANT:
        return np.full(n, r.read_signed(width), dtype=np.int64)
    if kind not in (FIXED, LIFTED):
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
        depth = r.read(LIFT_BITS)
        if depth not in LIFT_DEPTHS:
            raise CodecError(f"corrupt lossless payload: lifting depth {depth}")
        sizes = wavelet.band_sizes(m, depth)
        base = np.concatenate([[0], np.cumsum(sizes)])
        joined = rice.decode_split(r, base, max_width=cw + order + 2 + depth)
        bands = np.split(joined, base[1:-1])
        residual = wavelet.packet_inverse(bands, m, depth, integer=True)
    x = _unfixed(warm, residual, cw)
    low, high = -(1 << (cw - 1)), (1 << (cw - 1)) - 1
    if int(x.min()) < low or int(x.max()) > high:
        raise CodecError("corrupt lossless payload: a sample out of range")
    return x << shift


def _stereo_channels(x: np.ndarray, mode: int) -> tuple[np.ndarray, np.ndarray]:
    left, right = x[:, 0], x[:, 1]
    side = left - right
    if mode == INDEPENDENT:
        return left, right
    if mode == LEFT_SIDE:
        return left, side
    if mode == SIDE_RIGHT:
        return side, right
    return (left + right) >> 1, side


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
    mode = INDEPENDENT
    if channels == 2:
        cands = {
            "L": x[:, 0],
            "R": x[:, 1],
            "M": (x[:, 0] + x[:, 1]) >> 1,
            "S": x[:, 0] - x[:, 1],
        }
        # Second differences stand in for each channel's coded residual.
        order = min(2, frames - 1)
        est = {name: rice.estimate_bits(np.diff(v, order)) for name, v in cands.items()}
        pairs = {INDEPENDENT: "LR", LEFT_SIDE: "LS", SIDE_RIGHT: "SR", MID_SIDE: "MS"}
        mode = min(pairs, key=lambda m: est[pairs[m][0]] + est[pairs[m][1]])
    w = rice.BitWriter()
    w.write(_header(depth, mode, False, channels), 8)
    coded = _stereo_channels(x, mode) if channels == 2 else (x[:, 0],)
    for i, c in enumerate(coded):
        width = depth + 1 if (channels == 2 and _is_side(mode, i)) else depth
        _encode_channel(w, c, width)
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


class LosslessDecoder:
    """Decodes lossless payloads and conceals missing blocks (see :mod:`rtai.dsp.conceal`)."""

    def __init__(self, rate_hz: int, channels: int, block_frames: int) -> None:
        reason = check(rate_hz, channels, block_frames)
        if reason:
            raise CodecError(reason)
        self.channels = channels
        self.block_frames = block_frames
        self._concealer = Concealer(block_frames, channels, rate_hz)
        self._out = np.zeros((block_frames, channels), dtype=np.float32)

    def decode(self, payload: bytes) -> np.ndarray:
        x, depth = decode_ints(bytes(payload), self.block_frames, self.channels)
        block = (x.astype(np.float64) / float(1 << (depth - 1))).astype(np.float32)
        self._concealer.good(block, self._out)
        return self._out

    def conceal(self) -> np.ndarray:
        self._concealer.conceal(self._out)
        return self._out

    def recover(self, next_payload: bytes) -> np.ndarray | None:
        """Packets stand alone: a lost block cannot be rebuilt from the next one."""
        return None
