"""rtai perceptual: lossy wavelet-packet coding shaped by the threshold of hearing (pure).

Each packet is one block and decodes on its own (no overlap, no state across
packets, no look-ahead), so a lost packet costs only its block. Per block:

1. Stereo blocks become mid = (L + R) / 2 and side = (L - R) / 2.
2. A float lifting wavelet packet (:mod:`rtai.dsp.wavelet`) splits each channel into
   2**D equal-width bands, D chosen from the block length so that bands keep at least
   12 coefficients (D = 5 for 480 frames: 32 bands of 750 Hz at 48 kHz; at most 6).
3. Band b is quantised with step ``2**(scale/8) * 2**-15 * 10**(dT_b/20) / sqrt(g_b)``:
   ``dT_b`` is how far Terhardt's threshold in quiet (:mod:`rtai.dsp.toh`) at the
   band's most sensitive frequency lies above its minimum (clamped to 90 dB), and
   ``g_b`` the band's synthesis noise gain, so that the noise reaching the ear is
   shaped like the threshold and the one ``scale`` (0..255, 0.75 dB a step) sets its
   level. Quantisation rounds towards zero with a dead zone (|c| < 0.7 step -> 0).
4. Per channel: a bitmap of the bands that hold any non-zero integer, then those
   bands' integers with one Rice parameter per band (:func:`rtai.codecs.rice.encode_bounds`).

The scale travels in every packet, and with it (by the formula above, from the
packet's own depth and the negotiated rate) every band's step: the decoder needs
nothing else. The encoder's rate controller moves the scale after every block to
hold ``EncoderSettings.bitrate_bps`` (see :class:`RateController`).
"""

from __future__ import annotations

import functools
import math

import numpy as np

from rtai.codecs import CodecError, EncoderSettings, rice
from rtai.codecs.standalone import StandaloneDecoder
from rtai.dsp import toh, wavelet

PERCEPTUAL_PAYLOAD_TYPE = 101
VERSION = 1
MAX_DEPTH = 6
MIN_BAND = 12
SCALE_STEPS_PER_OCTAVE = 8
MAX_SCALE = 255
BASE_STEP = 2.0**-15
MAX_TOH_RISE_DB = 90.0
DEAD_ZONE = 0.3  # rounding offset: |c|/step below 1 - 0.3 quantises to 0
MIN_BITRATE_BPS = 6000
MAX_BITRATE_BPS = 1_000_000


def check(rate_hz: int, channels: int, block_frames: int) -> str | None:
    """Why the perceptual codec cannot run at (rate, channels, block); None when it can."""
    if channels not in (1, 2):
        return f"perceptual carries 1 or 2 channels, not {channels}: use --channels 1 or 2"
    if not 32 <= block_frames <= 4096:
        return f"perceptual needs --frame 32..4096, not {block_frames}"
    return None


def packet_depth(block_frames: int) -> int:
    """Wavelet-packet depth for a block: as deep as keeps bands >= MIN_BAND coefficients."""
    depth = 0
    while depth < MAX_DEPTH and block_frames >> (depth + 1) >= MIN_BAND:
        depth += 1
    return depth


@functools.lru_cache(maxsize=32)
def _band_layout(n: int, depth: int, rate_hz: int) -> tuple[np.ndarray, np.ndarray]:
    """(band bounds in the concatenated coefficient vector, relative step per band)."""
    sizes = wavelet.band_sizes(n, depth)
    bounds = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    # Synthesis noise gain of each band: energy out per unit coefficient energy in.
    eye = np.eye(n)
    bands = [eye[bounds[i] : bounds[i + 1]] for i in range(len(sizes))]
    synth = wavelet.packet_inverse(bands, n, depth, integer=False)  # column j: coefficient j
    energy = (synth**2).sum(axis=0)  # per coefficient
    gain = np.array([energy[bounds[i] : bounds[i + 1]].mean() for i in range(len(sizes))])
    edges = np.linspace(0.0, rate_hz / 2.0, len(sizes) + 1)
    rise = toh.band_threshold_db(edges)
    rise = np.minimum(rise - rise.min(), MAX_TOH_RISE_DB)
    rel = 10.0 ** (rise / 20.0) / np.sqrt(gain)
    bounds.flags.writeable = False
    rel.flags.writeable = False
    return bounds, rel


def band_steps(n: int, depth: int, rate_hz: int, scale: int) -> tuple[np.ndarray, np.ndarray]:
    """(band bounds, quantisation step per band) for a scale index."""
    bounds, rel = _band_layout(n, depth, rate_hz)
    return bounds, rel * (BASE_STEP * 2.0 ** (scale / SCALE_STEPS_PER_OCTAVE))


def _header(channels: int, depth: int) -> int:
    return (VERSION << 6) | ((channels - 1) << 5) | (depth << 2)


def encode_block(block: np.ndarray, rate_hz: int, scale: int) -> bytes:
    """One float block (frames, channels) at one scale index -> payload."""
    n, channels = block.shape
    depth = packet_depth(n)
    x = block.astype(np.float64)
    if channels == 2:
        x = np.stack([(x[:, 0] + x[:, 1]) * 0.5, (x[:, 0] - x[:, 1]) * 0.5], axis=1)
    coeffs = np.concatenate(wavelet.packet_forward(x, depth, integer=False), axis=0)
    bounds, steps = band_steps(n, depth, rate_hz, scale)
    per_coeff = np.repeat(steps, np.diff(bounds))[:, None]
    mag = np.floor(np.abs(coeffs) / per_coeff + DEAD_ZONE)
    q = (np.sign(coeffs) * mag).astype(np.int64)
    w = rice.BitWriter()
    w.write(_header(channels, depth), 8)
    w.write(scale, 8)
    for ch in range(channels):
        _encode_bands(w, q[:, ch], bounds)
    return w.to_bytes()


def _encode_bands(w: rice.BitWriter, q: np.ndarray, bounds: np.ndarray) -> None:
    """A bitmap of the bands holding any non-zero value, then those bands' values."""
    nonzero = np.logical_or.reduceat(q != 0, bounds[:-1])
    w.write_array(nonzero.astype(np.uint64), 1)
    keep = np.flatnonzero(nonzero)
    if keep.size:
        sizes = np.diff(bounds)[keep]
        values = np.concatenate([q[bounds[b] : bounds[b + 1]] for b in keep.tolist()])
        rice.encode_bounds(w, values, np.concatenate([[0], np.cumsum(sizes)]))


def _decode_bands(r: rice.BitReader, bounds: np.ndarray) -> np.ndarray:
    nonzero = r.read_array(np.ones(bounds.size - 1, dtype=np.int64)).astype(bool)
    q = np.zeros(int(bounds[-1]), dtype=np.int64)
    keep = np.flatnonzero(nonzero)
    if keep.size:
        sizes = np.diff(bounds)[keep]
        values = rice.decode_bounds(r, np.concatenate([[0], np.cumsum(sizes)]), max_width=30)
        starts = np.concatenate([[0], np.cumsum(sizes)])
        for i, b in enumerate(keep.tolist()):
            q[bounds[b] : bounds[b + 1]] = values[starts[i] : starts[i + 1]]
    return q


def decode_block(payload: bytes, frames: int, channels: int, rate_hz: int) -> np.ndarray:
    """float32 (frames, channels) from one payload, or CodecError."""
    if len(payload) < 2:
        raise CodecError(f"perceptual payload of {len(payload)} bytes is too short")
    head = payload[0]
    if head >> 6 != VERSION or head & 3:
        raise CodecError(f"not an rtai perceptual payload (header byte {head:#04x})")
    got = (head >> 5 & 1) + 1
    if got != channels:
        raise CodecError(f"perceptual payload of {got} channels, expected {channels}")
    depth = head >> 2 & 7
    if depth != packet_depth(frames):
        raise CodecError(f"perceptual payload of depth {depth} for a {frames}-frame block")
    bounds, steps = band_steps(frames, depth, rate_hz, payload[1])
    r = rice.BitReader(payload, start_byte=2)
    q = np.stack([_decode_bands(r, bounds) for _ in range(channels)], axis=1)
    r.finish()
    coeffs = q * np.repeat(steps, np.diff(bounds))[:, None]
    sizes = np.diff(bounds)
    bands = np.split(coeffs, np.cumsum(sizes)[:-1], axis=0)
    x = wavelet.packet_inverse(bands, frames, depth, integer=False)
    if channels == 2:
        x = np.stack([x[:, 0] + x[:, 1], x[:, 0] - x[:, 1]], axis=1)
    if not np.all(np.isfinite(x)):
        raise CodecError("corrupt perceptual payload: non-finite samples")
    return np.clip(x, -1.0, 1.0).astype(np.float32)


class RateController:
    """Holds a bit rate by moving the scale index after every block.

    The step size a scale gives grows by 2**(1/8) per index; at a few bits per
    coefficient the bits of a block fall by roughly one per significant coefficient
    per octave of step, so log2(bits / target) in octaves of error maps to about 8 to
    11 scale steps. The controller takes ``GAIN`` x 8 steps per octave of error (at
    most ``MAX_MOVE`` a block), on the block's own bits against a target corrected by
    a bit reservoir (the running surplus, repaid over ``REPAY_BLOCKS``), so the average
    converges to the target and not just near it.
    """

    GAIN = 0.9
    MAX_MOVE = 12.0
    REPAY_BLOCKS = 25.0
    RESERVOIR_BLOCKS = 50.0

    def __init__(self, target_bits: float, scale: float = 64.0) -> None:
        self.target_bits = target_bits
        self.scale = scale
        self.reservoir_bits = 0.0

    def index(self) -> int:
        return int(min(MAX_SCALE, max(0, round(self.scale))))

    def update(self, bits: int) -> None:
        self.reservoir_bits += bits - self.target_bits
        cap = self.RESERVOIR_BLOCKS * self.target_bits
        self.reservoir_bits = min(cap, max(-cap, self.reservoir_bits))
        aim = max(
            self.target_bits * 0.25, self.target_bits - self.reservoir_bits / self.REPAY_BLOCKS
        )
        err_octaves = math.log2(max(bits, 16) / aim)
        move = SCALE_STEPS_PER_OCTAVE * self.GAIN * err_octaves
        self.scale += min(self.MAX_MOVE, max(-self.MAX_MOVE, move))
        self.scale = min(float(MAX_SCALE), max(0.0, self.scale))


def _check_bitrate(bps: int) -> None:
    if not MIN_BITRATE_BPS <= bps <= MAX_BITRATE_BPS:
        raise CodecError(
            f"perceptual bit rate must be {MIN_BITRATE_BPS}..{MAX_BITRATE_BPS} bit/s, not {bps}"
        )


class PerceptualEncoder:
    """float32 blocks -> perceptual payloads at ``settings.bitrate_bps`` on average."""

    lookahead_frames = 0

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
        settings = settings if settings is not None else EncoderSettings()
        _check_bitrate(settings.bitrate_bps)
        self.rate_hz = rate_hz
        self.channels = channels
        self.block_frames = block_frames
        self.control = RateController(self._target(settings.bitrate_bps))

    def _target(self, bitrate_bps: int) -> float:
        return bitrate_bps * self.block_frames / self.rate_hz

    def encode(self, block: np.ndarray) -> bytes:
        if block.shape != (self.block_frames, self.channels):
            raise CodecError(
                f"block shape {block.shape}, expected {(self.block_frames, self.channels)}"
            )
        payload = encode_block(block, self.rate_hz, self.control.index())
        self.control.update(8 * len(payload))
        return payload

    def configure(self, settings: EncoderSettings) -> None:
        """Take a new target bit rate (the scale moves there within a few blocks)."""
        _check_bitrate(settings.bitrate_bps)
        self.control.target_bits = self._target(settings.bitrate_bps)


class PerceptualDecoder(StandaloneDecoder):
    """Decodes perceptual payloads and conceals missing blocks (:mod:`rtai.dsp.conceal`)."""

    def __init__(self, rate_hz: int, channels: int, block_frames: int) -> None:
        reason = check(rate_hz, channels, block_frames)
        if reason:
            raise CodecError(reason)
        super().__init__(rate_hz, channels, block_frames)

    def _decode_block(self, payload: bytes) -> np.ndarray:
        return decode_block(bytes(payload), self.block_frames, self.channels, self.rate_hz)
