"""The absolute threshold of hearing (Terhardt 1979), in dB SPL, and per-band minima.

    T(f) = 3.64 (f/kHz)^-0.8 - 6.5 exp(-0.6 (f/kHz - 3.3)^2) + 1e-3 (f/kHz)^4   [dB SPL]

The ear is most sensitive near 3.3 kHz (about -5 dB SPL), much less so at the bottom
of the range and above about 15 kHz. The perceptual codec shapes its quantisation
steps by this curve: a band may carry as much noise as the curve allows there,
relative to the most sensitive band.
"""

from __future__ import annotations

import numpy as np

MIN_HZ = 20.0  # the formula grows without bound towards 0 Hz


def threshold_db_spl(f_hz: np.ndarray | float) -> np.ndarray:
    """Terhardt's threshold in quiet at ``f_hz`` (clamped below at 20 Hz), dB SPL."""
    f = np.maximum(np.asarray(f_hz, dtype=np.float64), MIN_HZ) / 1000.0
    return 3.64 * f**-0.8 - 6.5 * np.exp(-0.6 * (f - 3.3) ** 2) + 1e-3 * f**4


def band_threshold_db(edges_hz: np.ndarray, points: int = 16) -> np.ndarray:
    """The lowest threshold within each band [edges[i], edges[i+1]) (the most sensitive
    frequency in it decides how much noise the band may carry)."""
    edges = np.asarray(edges_hz, dtype=np.float64)
    frac = np.linspace(0.0, 1.0, points)
    grid = edges[:-1, None] + (edges[1:] - edges[:-1])[:, None] * frac[None, :]
    return threshold_db_spl(grid).min(axis=1)
