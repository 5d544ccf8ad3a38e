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

Modules: this one is the codec (the encoder and decoder classes on float blocks);
:mod:`rtai.codecs.lossless_search` is the encoder's search (steps 1-5 above, ending in
:func:`encode_ints`) and :mod:`rtai.codecs.lossless_format` the bitstream's fields, their
writers and readers and the decoder (:func:`decode_ints`).
"""

from __future__ import annotations

import numpy as np

from rtai.codecs import CodecError, EncoderSettings
from rtai.codecs.lossless_format import VERSION, decode_ints
from rtai.codecs.lossless_search import encode_ints
from rtai.codecs.standalone import StandaloneDecoder

__all__ = [
    "LOSSLESS_PAYLOAD_TYPE",
    "VERSION",
    "LosslessDecoder",
    "LosslessEncoder",
    "check",
    "decode_ints",
    "encode_ints",
]

LOSSLESS_PAYLOAD_TYPE = 100
CODEC_DEPTH = 24  # the float path always codes on the 24-bit grid


def check(rate_hz: int, channels: int, block_frames: int) -> str | None:
    """Why the lossless codec cannot run at (rate, channels, block); None when it can."""
    if channels not in (1, 2):
        return f"lossless carries 1 or 2 channels, not {channels}: use --channels 1 or 2"
    if not 16 <= block_frames <= 4096:
        return f"lossless needs --frame 16..4096, not {block_frames}"
    return None


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
