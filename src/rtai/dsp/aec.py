"""rtai's own acoustic echo canceller (pure NumPy, one channel, 10 ms frames).

Built so the near-end talker comes through double talk untouched, which is where
suppression-heavy cancellers (WebRTC's AEC3 included) lose: the echo is taken out by
subtraction as completely as possible, and a suppressor only cleans up bins where the
remaining echo dominates.

* **Partitioned-block frequency-domain adaptive filter** (overlap-save, partitions of
  one frame, ``tail_s`` of echo path, per-bin step normalised by the far-end power the
  filter spans, gradient constraint so each partition stays a causal frame-long filter).
* **Loudspeaker non-linearity** (Hammerstein model): a small loudspeaker driven hard
  compresses, and what it adds is out of reach of a linear filter (about -19 dB for
  ``tanh`` clipping of full-scale speech, which caps a linear canceller's ERLE there).
  The reference is expanded into ``x + a3 x^3 + a5 x^5 + a7 x^7`` before the filter;
  the three coefficients are found by exponentially weighted least squares on the
  regressors ``h * x^k`` (the filter applied to each power), so the same room filter
  serves the linear and the compressed sound.
* **Two filters** against double talk: a background filter adapts on every frame; the
  foreground filter, whose output is used, is a copy of the background taken only
  while the background cancels clearly better. Near-end speech throws the background
  off (its error grows), so the foreground is left alone and keeps cancelling; a
  background that fell far behind is reset from the foreground.
* **Residual-echo suppressor** (optional): per bin, the remaining echo is estimated as
  ``leak * |Y|^2`` (``Y`` the foreground's echo estimate, ``leak`` the smallest recent
  share of the estimate left in the error while the far end talks) and the bin is
  attenuated only by how much that estimate dominates the error, down to ``floor_db``.
  It works on 20 ms sqrt-Hann windows, 10 ms hop: 10 ms of delay.
"""

from __future__ import annotations

import numpy as np

POWERS = (3, 5)


class EchoCanceller:
    """One channel: ``process(near, far)`` per frame of ``frame`` samples (float64)."""

    def __init__(
        self,
        frame: int,
        partitions: int,
        step: float = 0.5,
        nonlinear: bool = True,
        two_path: bool = False,
        suppress: bool = True,
        floor_db: float = -20.0,
        oversub: float = 3.0,
        reg_rel: float = 0.01,
        kalman: bool = True,
        tracking: float = 0.9999,
        per_bin: bool = True,
        release: float = 0.6,
        dd: float = 0.0,
        powers: tuple[int, ...] = POWERS,
        fit_after_db: float = 15.0,
        fit_forget: float = 0.98,
        env_partitions: float = 3.0,
        env_shift: bool = True,
        echo_only_floor_db: float | None = None,
        uncertainty: float = 0.0,
    ) -> None:
        self.f = f = frame
        self.partitions = p = partitions
        self.step = step
        self.nonlinear = nonlinear
        self.two_path = two_path
        self.suppress = suppress
        self.reg_rel = reg_rel
        self.kalman = kalman
        self.tracking = tracking
        self.kscale = 1.0
        self.psi_w = 2.0
        bins = f + 1
        # Kalman state-error variance per partition and bin: starts along a decaying
        # envelope (early partitions hold most of a room's echo)
        # (shifted to the direct sound once the filter has found it)
        self.env_partitions = env_partitions
        self.env_shift = env_shift
        self.delay_partitions = 0
        self._env = self._envelope(0)
        self._p = np.repeat(self._env[:, None], bins, axis=1)
        self._far_frames = 0
        self.delay_log: list = []
        self._q = max(1, frame // 60)
        self._dfar = np.zeros(150 * frame // self._q)
        self._dmic = np.zeros(150 * frame // self._q)
        self._psi = np.full(bins, 1e-6)
        self.powers = powers
        self.fit_after_db = fit_after_db
        self.fit_forget = fit_forget
        k = len(powers)
        self._prev = np.zeros((1 + k, f))  # last frame of x and its powers
        self._xh = np.zeros((p, bins), complex)  # expanded reference spectra, newest first
        self._xs = np.zeros((1 + k, p, bins), complex)  # x and its powers (the a update)
        self._wb = np.zeros((p, bins), complex)  # background (adapting) filter
        self._wf = np.zeros((p, bins), complex)  # foreground (output) filter
        self.a = np.zeros(k)
        self._af = np.zeros(k)  # the coefficients that go with the foreground
        self._R = np.eye(k) * 1e-9
        self._r = np.zeros(k)
        # two-path energies (smoothed over ~40 ms)
        self._sf = 0.0
        self._sb = 0.0
        self._better = 0
        self._worse = 0
        self.copies = 0
        self.resets = 0
        # suppressor
        self._win = np.sqrt(np.hanning(2 * f + 1)[: 2 * f])
        self._e_prev = np.zeros(f)
        self._y_prev = np.zeros(f)
        self._ola = np.zeros(f)
        self._gain = np.ones(bins)
        self._floor = 10 ** (floor_db / 20)
        self.uncertainty = uncertainty
        self._phi = np.zeros(bins)
        self._floor_echo = 10 ** ((echo_only_floor_db or floor_db) / 20)
        self.oversub = oversub
        self.leak = 1.0
        self.per_bin = per_bin
        self.release = release
        self.dd = dd
        self._near_prev = np.zeros(bins)
        self._leak_k = np.ones(bins)
        self.single_talk_frames = 0
        self.erle_db = 0.0  # foreground's, smoothed, while the far end talks

    def _envelope(self, start: int) -> np.ndarray:
        p = np.arange(self.partitions)
        env = np.exp(-np.maximum(p - start, 0) / self.env_partitions)
        env[:start] = env[start] * 0.05
        return env / env.sum()

    def _find_delay(self, near: np.ndarray, far: np.ndarray) -> None:
        """Every 0.5 s of far-end sound: the acoustic delay, from the peak of the
        phase-transform cross-correlation of far end and microphone over the last
        1.5 s (decimated to ~6 kHz); the uncertainty prior is restarted there."""
        q = self._q
        self._dfar = np.roll(self._dfar, -len(far) // q)
        self._dmic = np.roll(self._dmic, -len(near) // q)
        self._dfar[-len(far) // q :] = far[: len(far) // q * q].reshape(-1, q).mean(axis=1)
        self._dmic[-len(near) // q :] = near[: len(near) // q * q].reshape(-1, q).mean(axis=1)
        self._far_frames += 1
        if self._far_frames % 50:
            return
        n = len(self._dfar)
        size = 2 * n
        F = np.fft.rfft(self._dfar, size)
        M = np.fft.rfft(self._dmic, size)
        C = M * np.conj(F)
        xc = np.fft.irfft(C / (np.abs(C) + 1e-12), size)[: self.partitions * self.f // q]
        peak = int(np.argmax(xc))
        if xc[peak] < 4.0 * float(np.sqrt(np.mean(xc**2))):
            return  # no clear path (near-end talk, or no echo)
        start = peak * q // self.f
        if abs(start - self.delay_partitions) <= 1:
            return
        self._env = self._envelope(start)
        self._p = np.repeat(self._env[:, None], self.f + 1, axis=1)
        self.delay_partitions = start
        self.delay_log.append((self._far_frames, start))

    # -- helpers -------------------------------------------------------------------------

    def _filter(self, w: np.ndarray, hist: np.ndarray) -> np.ndarray:
        return np.fft.irfft(np.einsum("pb,pb->b", w, hist))[self.f :]

    def _adapt(self, e: np.ndarray) -> None:
        if self.kalman:
            return self._adapt_kalman(e)
        f = self.f
        hist = self._xh
        norm = np.sum(hist.real**2 + hist.imag**2, axis=0)
        norm += self.reg_rel * float(np.mean(norm)) + 1e-10 * f
        E = np.fft.rfft(np.concatenate([np.zeros(f), e]))
        grad = np.conj(hist) * (self.step * E / norm)
        g = np.fft.irfft(grad, axis=-1)
        g[:, f:] = 0.0  # each partition a causal filter one frame long
        self._wb += np.fft.rfft(g, axis=-1)

    def _adapt_kalman(self, e: np.ndarray) -> None:
        """Diagonal frequency-domain Kalman update: the step per partition and bin is
        the state's uncertainty over the uncertainty plus the observation noise (the
        near end and noise), so it is large while the filter is unsure and small when
        the error is mostly near-end sound."""
        f = self.f
        hist = self._xh
        px = hist.real**2 + hist.imag**2
        E = np.fft.rfft(np.concatenate([np.zeros(f), e]))
        pe = E.real**2 + E.imag**2
        phi = np.sum(px * self._p, axis=0)  # echo-estimate uncertainty, per bin
        self._phi = phi
        noise = np.maximum(pe - 0.5 * phi, 0.0)
        self._psi = 0.5 * self._psi + 0.5 * noise
        denom = self.kscale * phi + self.psi_w * self._psi + 1e-12
        mu = self._p / denom
        g = np.fft.irfft(mu * np.conj(hist) * E, axis=-1)
        g[:, f:] = 0.0
        self._wb += np.fft.rfft(g, axis=-1)
        self._p *= np.maximum(1.0 - 0.5 * mu * px, 0.0)
        a2 = self.tracking**2
        self._p = a2 * self._p + (1 - a2) * (self._wb.real**2 + self._wb.imag**2)

    def _fit_powers(self, near: np.ndarray, far_active: bool) -> None:
        """Least squares for a3, a5, a7 on the foreground's regressors h * x^k."""
        if not far_active or self.erle_db < self.fit_after_db:
            return
        regs = np.stack([self._filter(self._wf, self._xs[i]) for i in range(1, len(self.powers) + 1)])
        lin = self._filter(self._wf, self._xs[0])
        target = near - lin
        lam = self.fit_forget
        self._R = lam * self._R + regs @ regs.T
        self._r = lam * self._r + regs @ target
        d = np.sqrt(np.diag(self._R))
        if not np.all(d > 0.0):
            return
        # Jacobi-scaled, lightly regularised: the powers are strongly correlated
        rn = self._R / np.outer(d, d) + 1e-3 * np.eye(len(self.powers))
        try:
            a = np.linalg.solve(rn, self._r / d) / d
        except np.linalg.LinAlgError:
            return
        self.a = np.clip(a, -4.0, 4.0)

    # -- per frame -----------------------------------------------------------------------

    def process(self, near: np.ndarray, far: np.ndarray) -> np.ndarray:
        f = self.f
        x = np.clip(far, -1.0, 1.0)
        cur = np.stack([x] + [x**k for k in self.powers]) if self.nonlinear else x[None]
        n = len(cur)
        spec = np.fft.rfft(np.concatenate([self._prev[:n], cur], axis=1), axis=-1)
        self._prev[:n] = cur
        X = spec[0] + (self.a @ spec[1:] if self.nonlinear else 0.0)
        self._xh[1:] = self._xh[:-1]
        self._xh[0] = X
        if self.nonlinear:
            self._xs[:, 1:] = self._xs[:, :-1]
            self._xs[:, 0] = spec
        far_pow = float(np.dot(x, x))
        far_active = far_pow > 1e-7 * f  # about -70 dBFS
        yb = self._filter(self._wb, self._xh)
        eb = near - yb
        if self.two_path:
            yf = self._filter(self._wf, self._xh)
            ef = near - yf
            self._manage(float(np.dot(ef, ef)), float(np.dot(eb, eb)), far_active)
        else:
            yf, ef = yb, eb
        self._adapt(eb)
        if self.kalman and far_active and self.env_shift:
            self._find_delay(near, x)
        if not self.two_path:
            self._wf = self._wb
        if self.nonlinear:
            self._fit_powers(near, far_active)
        if far_active:
            ratio = float(np.dot(near, near)) / (float(np.dot(ef, ef)) + 1e-20)
            self.erle_db = 0.9 * self.erle_db + 0.1 * 10 * np.log10(max(ratio, 1e-6))
        if self.suppress:
            return self._suppress(ef, yf, far_active)
        return ef

    def _manage(self, ef2: float, eb2: float, far_active: bool) -> None:
        self._sf = 0.7 * self._sf + 0.3 * ef2
        self._sb = 0.7 * self._sb + 0.3 * eb2
        if not far_active:
            self._better = self._worse = 0
            return
        if self._sb < 0.7 * self._sf:  # background clearly better: take it
            self._better += 1
        else:
            self._better = 0
        if self._better >= 2:
            self._wf[:] = self._wb
            self.copies += 1
            self._sf = self._sb
            self._better = 0
        if self._sb > 8.0 * self._sf:  # background thrown far off: start it again
            self._worse += 1
        else:
            self._worse = 0
        if self._worse >= 20:
            self._wb[:] = self._wf
            self.resets += 1
            self._sb = self._sf
            self._worse = 0

    def _suppress(self, e: np.ndarray, y: np.ndarray, far_active: bool) -> np.ndarray:
        f = self.f
        win = self._win
        E = np.fft.rfft(win * np.concatenate([self._e_prev, e]))
        Y = np.fft.rfft(win * np.concatenate([self._y_prev, y]))
        self._e_prev = e
        self._y_prev = y
        pe = E.real**2 + E.imag**2
        py = Y.real**2 + Y.imag**2
        spy = float(np.sum(py))
        floor = self._floor
        if far_active and spy > 1e-12:
            r = float(np.sum(pe)) / spy
            # smallest recent share: falls to a single-talk frame at once, rises ~6 dB/s
            self.leak = min(r, self.leak * 1.014)
            if r < 2.0 * self.leak:  # error within 3 dB of the echo-only share: no near end
                self.single_talk_frames += 1
                ratio = np.clip(pe / (py + 1e-20), 1e-5, 1.0)
                self._leak_k = 0.8 * self._leak_k + 0.2 * ratio
                floor = self._floor_echo
        leak = self._leak_k if self.per_bin else self.leak
        residual = self.oversub * leak * py + self.uncertainty * 0.5 * self._phi
        if self.dd > 0.0:  # decision-directed near-end-to-residual ratio (Wiener gain)
            post = np.maximum(pe / (residual + 1e-20) - 1.0, 0.0)
            prio = self.dd * self._near_prev / (residual + 1e-20) + (1 - self.dd) * post
            gain = np.clip(prio / (1.0 + prio), floor, 1.0)
            self._near_prev = gain**2 * pe
        else:
            gain = np.clip(1.0 - residual / (pe + 1e-20), floor, 1.0)
        r = self.release
        gain = np.minimum(gain, r * self._gain + (1 - r) * gain)  # release slowly
        self._gain = gain
        out = win * np.fft.irfft(gain * E)
        frame = out[:f] + self._ola
        self._ola = out[f:]
        return frame
