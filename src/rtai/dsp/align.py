"""Find how far one recording lags another, and how alike they are once aligned.

Used by the demo report, the tests and the benchmarks to compare what was sent
with what came out at the other end. Mono float arrays; FFT cross-correlation.
"""

from __future__ import annotations

import numpy as np
from scipy import signal


def find_lag(reference: np.ndarray, received: np.ndarray) -> int:
    """Samples by which ``received`` lags ``reference`` (``received[n] ~ reference[n - lag]``)."""
    ref = np.asarray(reference, dtype=np.float64).ravel()
    rec = np.asarray(received, dtype=np.float64).ravel()
    if ref.size == 0 or rec.size == 0:
        raise ValueError("cannot align an empty recording")
    xc = signal.correlate(rec, ref, mode="full", method="fft")
    return int(np.argmax(xc)) - (ref.size - 1)


def overlap(reference: np.ndarray, received: np.ndarray, lag: int) -> tuple[np.ndarray, np.ndarray]:
    """The parts of the two recordings that line up at ``lag``."""
    ref = np.asarray(reference).ravel()
    rec = np.asarray(received).ravel()
    if lag >= 0:
        n = min(ref.size, rec.size - lag)
        return ref[: max(0, n)], rec[lag : lag + max(0, n)]
    n = min(ref.size + lag, rec.size)
    return ref[-lag : -lag + max(0, n)], rec[: max(0, n)]


def correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation of two equal-length arrays (0.0 when either is silent)."""
    a = np.asarray(a, dtype=np.float64) - np.mean(a)
    b = np.asarray(b, dtype=np.float64) - np.mean(b)
    den = float(np.sqrt(np.dot(a, a) * np.dot(b, b)))
    return float(np.dot(a, b) / den) if den > 0 else 0.0


def aligned_correlation(reference: np.ndarray, received: np.ndarray) -> tuple[int, float]:
    """Return ``(lag_samples, correlation)`` of the best alignment."""
    lag = find_lag(reference, received)
    a, b = overlap(reference, received, lag)
    return lag, correlation(a, b) if a.size else 0.0


def windowed_delays(
    played: np.ndarray,
    play_start_frame: int,
    recorded: np.ndarray,
    rec_start_frame: int,
    rate_hz: int,
    window_s: float = 0.5,
    quiet_dbfs: float = -35.0,
    search_s: float = 0.3,
) -> list[tuple[float, float, float]]:
    """Delay and correlation window by window, for a path whose delay may change.

    Returns ``(t_s, delay_ms, correlation)`` for each loud window of ``played``: ``t_s``
    is the window's start in seconds after playback began; the delay is sought within
    ``search_s`` of the whole-signal estimate's neighbourhood in the recording, as the
    lag where the window is most alike the recording (:func:`_best_match`).
    """
    w = int(window_s * rate_hz)
    search = int(search_s * rate_hz)
    out = []
    offset = play_start_frame - rec_start_frame  # played[0] enters at recording index
    for start in range(0, len(played) - w, w // 2):
        seg = played[start : start + w]
        if 10 * np.log10(np.mean(seg.astype(np.float64) ** 2) + 1e-20) < quiet_dbfs:
            continue
        lo = max(0, offset + start)
        hay = recorded[lo : lo + w + search]
        if len(hay) < w:
            break
        lag = _best_match(seg, hay)
        corr = correlation(seg, hay[lag : lag + w])
        delay_frames = lo + lag - offset - start
        out.append((start / rate_hz, delay_frames * 1000.0 / rate_hz, corr))
    return out


def _best_match(seg: np.ndarray, hay: np.ndarray) -> int:
    """The offset ``k`` in ``0 .. len(hay) - len(seg)`` where ``hay[k : k + len(seg)]``
    is most alike ``seg``: the largest normalised cross-correlation (cosine similarity).
    The raw cross-correlation's peak would favour a louder stretch of ``hay`` that
    matches ``seg`` less well (a syllable next to a louder one)."""
    seg = np.asarray(seg, dtype=np.float64)
    hay = np.asarray(hay, dtype=np.float64)
    w = seg.size
    xc = signal.correlate(hay, seg, mode="valid", method="fft")
    energy = np.concatenate([[0.0], np.cumsum(hay * hay)])
    window_energy = np.maximum(energy[w:] - energy[:-w], 0.0)
    norm = np.sqrt(window_energy * float(seg @ seg))
    score = np.where(norm > 0, xc / np.where(norm > 0, norm, 1.0), 0.0)
    return int(np.argmax(score))
