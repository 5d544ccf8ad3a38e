"""rtai's own acoustic echo canceller (pure NumPy, one channel, 10 ms frames).

Built so the near-end talker comes through double talk: the echo is taken out by
subtraction as far as a model of the loudspeaker and the room allows, and the
suppressor after it only attenuates bins where the remaining echo dominates.
(Suppression-heavy cancellers, WebRTC's AEC3 as pywebrtc-audio configures it included,
attenuate the near end wherever the far end is active.)

* **Partitioned-block frequency-domain Kalman filter** (overlap-save, partitions of one
  frame covering ``partitions`` frames of echo path, gradient constraint so each
  partition stays a causal one-frame filter). Per partition and bin, the step is the
  filter's own uncertainty over that uncertainty plus four times the observation noise,
  taken as the whole error power (near-end speech, noise and the echo the filter has
  yet to learn alike): a cautious step, small when the error is mostly the near end,
  so double talk slows the adaptation instead of throwing the filter off. (After
  Enzner and Vary's frequency-domain adaptive Kalman filter, diagonal form.)
* **Data reuse** (``replays``): after each frame the filter adapts once more on each of
  two earlier frames picked at random from the last ``replay_span`` (3 s), the error
  recomputed with today's filter, with the larger of that frame's observation noise and
  its new error power (weighted 4, as in the frame's own step); frames where a converged
  filter (20 dB) took less than 6 dB out, i.e. the near end talked, are not replayed,
  and the uncertainty is not lowered again (the frame's information was counted once).
  Speech excites a room's response in few directions at a time, and the diagonal Kalman
  filter learns from it slowly: in bench/echo.py's rooms the filter's own echo
  attenuation (suppressor off) in the fourth second of far-end speech rose from 24 to 30
  dB (office) and from 19 to 25 dB (hall), in the hall from 21-23 to 30-36 dB from 5 s
  on; with the cautious step and the suppressor changes below, double-talk PESQ-WB rose
  by 0.12 to 0.54, for 1.3 times the CPU (the replays work in single precision). The
  reference spectra are kept twice over in a ring (single precision) so that any run of
  ``partitions`` frames is one slice (with the microphone frames, about 11 MB per
  channel at 48 kHz); a restart cuts off the microphone frames before it.
* **Where the echo path starts**: the uncertainty starts along an exponential envelope
  (``env_partitions``, a room's energy decay) from the direct sound; every 0.25 s of
  far-end sound the acoustic delay is measured (phase-transform cross-correlation of
  far end and microphone over the last 1.5 s, decimated to ~6 kHz) and the envelope is
  restarted there when the delay moved (the same delay found twice in a row). This
  makes convergence several times faster than a flat start. The uncertainty is also
  capped by the echo path's largest possible gain (microphone over far-end energy, with
  a 6 dB margin), so a weak or absent echo leaves the filter, and the suppressor that
  reads its uncertainty, alone.
* **Loudspeaker non-linearity** (Hammerstein model): a small loudspeaker driven hard
  compresses, and what that adds is out of reach of a linear filter (about -19 dB for
  ``tanh`` compression of full-scale speech, which caps a linear canceller's ERLE
  there). The reference is expanded into ``x + a3 x^3 + a5 x^5`` before the filter; the
  two coefficients are found by exponentially weighted least squares on the regressors
  ``h * x^k`` (the filter applied to each power) once the filter has converged to
  ``fit_after_db`` of ERLE.
* **Residual-echo suppressor**: per bin, the remaining echo is estimated as
  ``oversub * leak_k * |Y_k|^2 + uncertainty * (the Kalman filter's predicted error
  variance)``: ``Y`` the echo estimate, ``leak_k`` the share of it left in the error,
  learned per bin in frames whose error is within 3 dB of the smallest recent share
  (no near end); the bin's gain is ``1 - residual / |E|^2`` with both powers summed
  over ``pool`` neighbouring bins, floored at ``floor_db``, then averaged over
  ``spread`` bins (450 Hz; bins are 50 Hz apart), falling at once and recovering with
  ``release``: one bin's gain does not follow each random dip of the near end's
  spectrum, nor does an isolated echo bin stay open (this raised double-talk PESQ-WB
  by about 0.4 on bench/echo.py, with no loss of ERLE). ``oversub`` and ``uncertainty``
  are 0.5 (they were 1 and 2 before the replays): with the better filter the estimate
  was still about 13 dB above the true residual during double talk (median over
  500 Hz-10 kHz, reverberant hall), and halving both raised double-talk PESQ-WB by
  up to 0.08 (0.01 in the small room) for 4 to 6 dB of single-talk ERLE. It works on
  20 ms sqrt-Hann windows with a 10 ms hop: 10 ms of delay.
* **A moved echo path** (the laptop turned, the reference realigned after an xrun):
  :meth:`EchoCanceller.restart` gives the filter its full uncertainty back and stops
  replays of frames from before it; the pipeline calls it on a realignment, and the
  canceller itself when a filter that had converged makes the microphone louder (by
  1.5 dB, energies smoothed over 0.1 s) for 0.2 s of far-end sound. (The Kalman step
  reads a sudden large error as near-end sound and would otherwise relearn very
  slowly. Judged frame by frame, the test missed a path 30 ms longer under speech:
  each onset and each pause reset it.)

``echo_only`` tells the stages after it (gain control, voice gate) that the last frame
held echo and next to no near end.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import fft as sfft

POWERS = (3, 5)
DELAY_EVERY = 25  # frames of far-end sound between delay measurements (0.25 s)


def _across(v: np.ndarray, width: int) -> np.ndarray:
    """Moving average over ``width`` neighbouring bins (edges repeated)."""
    if width <= 1:
        return v
    padded = np.pad(v, width // 2, mode="edge")
    return np.convolve(padded, np.full(width, 1.0 / width), mode="valid")


class EchoCanceller:
    """One channel: :meth:`process` per frame of ``frame`` samples (float64 arrays)."""

    def __init__(
        self,
        frame: int,
        partitions: int,
        nonlinear: bool = True,
        suppress: bool = True,
        floor_db: float = -30.0,
        oversub: float = 0.5,
        uncertainty: float = 0.5,
        release: float = 0.3,
        smooth: float = 0.0,
        pool: int = 3,
        spread: int = 9,
        env_partitions: float = 3.0,
        tracking: float = 0.9999,
        fit_after_db: float = 15.0,
        fit_forget: float = 0.98,
        replays: int = 2,
        replay_span: int = 300,
    ) -> None:
        self.f = f = frame
        self.partitions = p = partitions
        self.nonlinear = nonlinear
        self.suppress = suppress
        self.tracking = tracking
        self.fit_after_db = fit_after_db
        self.fit_forget = fit_forget
        self.ridge = 0.01
        self._moments = np.zeros(1 + len(POWERS))
        self.smooth = smooth
        self.pool = pool
        self.spread = spread
        bins = f + 1
        k = len(POWERS) if nonlinear else 0
        # reference: the last frame of x (and its powers), their spectra per partition
        self._prev = np.zeros((1 + k, f))
        self._xh = np.zeros((p, bins), complex)  # the expanded reference x + a3 x^3 + ...
        self._w = np.zeros((p, bins), complex)
        # data reuse: the reference spectra (twice over, so that any run of ``p`` frames
        # is one slice), the microphone and observation noise of the last frames
        self.replays = replays
        self.replay_span = replay_span
        self._ring = r = replay_span + p + 1
        self._hist = np.zeros((1 + k, 2 * r, bins), np.complex64)
        self._near_hist = np.zeros((r, f))
        self._psi_hist = np.zeros((r, bins))
        self._far_hist = np.zeros(r, bool)
        self._talk_hist = np.zeros(r, bool)  # a converged filter took < 6 dB out: near end
        self._t = 0  # frames seen
        self._replay_from = 0  # no replay of microphone frames from before a restart
        self._rng = np.random.default_rng(0)
        self.a = np.zeros(k)
        self._R = np.zeros((k, k))
        self._r = np.zeros(k)
        # Kalman state: uncertainty per partition and bin, observation noise per bin
        self.env_partitions = env_partitions
        self.delay_partitions = 0
        self._env = self._envelope(0)
        self._p = np.repeat(self._env[:, None], bins, axis=1)
        self._psi = np.zeros(bins)
        self._phi = np.zeros(bins)
        # acoustic delay finder (decimated far end and microphone, last 1.5 s)
        self._q = max(1, f // 60)
        self._dfar = np.zeros(150 * (f // self._q))
        self._dmic = np.zeros_like(self._dfar)
        self._far_frames = 0
        self._candidate: int | None = None
        self.delays_found = 0
        self.restarts = 0
        self._worse = 0
        self._peak_db = 0.0
        self._mic_s = 0.0  # microphone and error energy over the last ~0.1 s of far end
        self._err_s = 0.0
        self._mic_e = 0.0  # microphone and far-end energy while the far end talks:
        self._far_e = 0.0  # their ratio bounds the echo path's gain
        self._path_bound = 1.0
        # suppressor
        self._win = np.sqrt(np.hanning(2 * f + 1)[: 2 * f])  # periodic: 50 % overlap-add
        self._e_prev = np.zeros(f)
        self._y_prev = np.zeros(f)
        self._ola = np.zeros(f)
        self._gain = np.ones(bins)
        self._pe_s = np.zeros(bins)
        self._py_s = np.zeros(bins)
        self._floor = 10 ** (floor_db / 20)
        self.oversub = oversub
        self.uncertainty = uncertainty
        self.release = release
        self.leak = 1.0  # smallest recent share of the echo estimate left in the error
        self._leak_k = np.ones(bins)
        self.erle_db = 0.0  # microphone over error while the far end talks, smoothed
        self.echo_only = False  # the last frame held echo and (next to) no near end

    # -- the adaptive filter ---------------------------------------------------------------

    def _envelope(self, start: int) -> np.ndarray:
        p = np.arange(self.partitions)
        env = np.exp(-np.maximum(p - start, 0) / self.env_partitions)
        env[:start] = env[start] * 0.05
        return env / env.sum()

    def _filter(self, w: np.ndarray, hist: np.ndarray) -> np.ndarray:
        return np.fft.irfft((w * hist).sum(axis=0))[self.f :]

    def _spans(self, j: int) -> np.ndarray:
        """The reference spectra (x and its powers) of frame ``j`` and the ``partitions``
        - 1 frames before it, newest first: a view of the history."""
        end = j % self._ring + self._ring
        return self._hist[:, end - self.partitions + 1 : end + 1][:, ::-1]

    def _expand(self, spans: np.ndarray) -> np.ndarray:
        """The expanded reference x + a3 x^3 + a5 x^5 from its parts."""
        hist = spans[0].copy()
        for a, part in zip(self.a, spans[1:], strict=True):
            hist += float(a) * part
        return hist

    def _adapt(self, e: np.ndarray) -> None:
        f = self.f
        hist = self._xh
        px = hist.real**2 + hist.imag**2
        E = np.fft.rfft(np.concatenate([np.zeros(f), e]))
        pe = E.real**2 + E.imag**2
        phi = np.sum(px * self._p, axis=0)  # the echo estimate's predicted error, per bin
        self._phi = phi
        # observation noise: the whole error (near end, noise and what the filter has
        # yet to learn alike), weighted 4 times: a cautious step, which keeps the near
        # end from pulling the filter off during double talk; replays give the speed
        self._psi = 0.5 * self._psi + 0.5 * pe
        mu = self._p / (phi + 4.0 * self._psi + 1e-12)
        self._step(mu * np.conj(hist) * E)
        self._p *= np.maximum(1.0 - 0.5 * mu * px, 0.0)
        a2 = self.tracking**2  # the room may change: let uncertainty grow back slowly
        self._p = a2 * self._p + (1 - a2) * (self._w.real**2 + self._w.imag**2)
        # no more uncertainty than an echo path as loud as the microphone allows (6 dB
        # margin): a weak or absent echo leaves the filter sure of itself
        np.minimum(self._p, 4.0 * self._path_bound * self._env[:, None], out=self._p)

    def _step(self, grad: np.ndarray) -> None:
        """Add a gradient, constrained so each partition stays a causal filter one frame
        long (in single precision: the step is small against the filter)."""
        g = sfft.irfft(grad.astype(np.complex64, copy=False), axis=-1)[:, : self.f]
        self._w += sfft.rfft(g, 2 * self.f, axis=-1)

    def _replay(self) -> None:
        """Adapt again on ``replays`` earlier frames (picked at random from the last
        ``replay_span``) with today's filter: speech excites a room's response in few
        directions at a time, and a second look at what the filter has since learned
        more about converges it much faster (without lowering its uncertainty: the
        frame's information was counted once already)."""
        f, p, r = self.f, self.partitions, self._ring
        first = max(self._replay_from, p - 1, self._t - self.replay_span)
        n = self._t - 1 - first  # candidate frames, the current one excluded
        if n < 10:
            return
        for _ in range(self.replays):
            j = first + int(self._rng.integers(n))
            if not self._far_hist[j % r] or self._talk_hist[j % r]:
                continue  # no far end, or the near end talked over it
            hist = self._expand(self._spans(j))
            e = self._near_hist[j % r] - self._filter(self._w, hist)
            E = np.fft.rfft(np.concatenate([np.zeros(f), e]))
            pe = E.real**2 + E.imag**2
            p32 = self._p.astype(np.float32)
            phi = np.einsum("pb,pb->b", hist.real**2 + hist.imag**2, p32)
            psi = np.maximum(self._psi_hist[j % r], pe)
            grad = p32 * (E / (phi + 4.0 * psi + 1e-12)).astype(np.complex64)
            grad *= hist.conj()
            self._step(grad)

    def _find_delay(self, near: np.ndarray, far: np.ndarray) -> None:
        q = self._q
        n = len(far) // q
        self._dfar[:-n] = self._dfar[n:]
        self._dmic[:-n] = self._dmic[n:]
        self._dfar[-n:] = far[: n * q].reshape(n, q).mean(axis=1)
        self._dmic[-n:] = near[: n * q].reshape(n, q).mean(axis=1)
        self._far_frames += 1
        if self._far_frames % DELAY_EVERY:
            return
        size = 2 * len(self._dfar)
        C = np.fft.rfft(self._dmic, size) * np.conj(np.fft.rfft(self._dfar, size))
        xc = np.fft.irfft(C / (np.abs(C) + 1e-12), size)[: self.partitions * self.f // q]
        peak = int(np.argmax(xc))
        if xc[peak] < 6.0 * float(np.sqrt(np.mean(xc**2))):
            self._candidate = None
            return  # no clear path (near-end talk, no echo)
        start = peak * q // self.f
        candidate, self._candidate = self._candidate, start
        if candidate is None or abs(candidate - start) > 1:
            return  # not yet found twice in a row
        if abs(start - self.delay_partitions) <= 1:
            return
        self._env = self._envelope(start)
        self._p = np.repeat(self._env[:, None], self.f + 1, axis=1)
        self.delay_partitions = start
        self.delays_found += 1

    def restart(self) -> None:
        """The echo path moved (or the reference did): full uncertainty again, along
        the envelope from the last known delay, and a fresh delay search."""
        self._p = np.repeat(self._env[:, None], self.f + 1, axis=1)
        self._psi[:] = 0.0
        self._replay_from = self._t
        self._candidate = None
        self.restarts += 1

    def _fit_powers(self, near: np.ndarray, xs: np.ndarray) -> None:
        """Least squares for a3, a5 on the regressors h * x^k (exponentially weighted)."""
        outs = np.fft.irfft(np.einsum("pb,kpb->kb", self._w, xs), axis=-1)[:, self.f :]
        regs, target = outs[1:], near - outs[0]
        lam = self.fit_forget
        self._R = lam * self._R + regs @ regs.T
        self._r = lam * self._r + regs @ target
        d = np.sqrt(np.diag(self._R))
        if not np.all(d > 0.0):
            return
        # Jacobi-scaled and lightly regularised: the powers are strongly correlated
        rn = self._R / np.outer(d, d) + self.ridge * np.eye(len(d))
        try:
            a = np.linalg.solve(rn, self._r / d) / d
        except np.linalg.LinAlgError:  # pragma: no cover - regularised, so not singular
            return
        self.a = np.clip(a, -4.0, 4.0)

    # -- per frame -----------------------------------------------------------------------

    def process(self, near: np.ndarray, far: np.ndarray) -> np.ndarray:
        """One frame of microphone (``near``) and of what the speaker played at the same
        time (``far``), both ``frame`` samples; returns the echo-cancelled frame (10 ms
        late when the suppressor is on)."""
        f = self.f
        self.echo_only = False
        x = np.clip(far, -1.0, 1.0)
        if self.nonlinear:
            # the powers without their linear part (x^k - c_k x, c_k = E[x^k+1] / E[x^2]
            # tracked over ~1 s of far-end sound), so the model cannot pose as a gain
            if np.dot(x, x) > 1e-7 * f:
                m = np.array([np.mean(x ** (k + 1)) for k in (1,) + POWERS])
                self._moments = 0.99 * self._moments + 0.01 * m
            c = self._moments[1:] / max(self._moments[0], 1e-12)
            cur = np.stack([x] + [x**k - ck * x for k, ck in zip(POWERS, c, strict=True)])
        else:
            cur = x[None]
        spec = np.fft.rfft(np.concatenate([self._prev, cur], axis=1), axis=-1)
        self._prev = cur
        i = self._t % self._ring
        self._hist[:, i] = self._hist[:, i + self._ring] = spec
        xs = self._spans(self._t)
        self._xh[1:] = self._xh[:-1]
        self._xh[0] = spec[0] + self.a @ spec[1:]
        y = self._filter(self._w, self._xh)
        e = near - y
        self._adapt(e)
        far_active = float(np.dot(x, x)) > 1e-7 * f  # about -70 dBFS
        self._near_hist[i] = near
        self._psi_hist[i] = self._psi
        self._far_hist[i] = far_active
        self._t += 1
        if self.replays:
            self._replay()
        if far_active:
            self._mic_e = 0.99 * self._mic_e + 0.01 * float(np.dot(near, near))
            self._far_e = 0.99 * self._far_e + 0.01 * float(np.dot(x, x))
            if self._far_frames >= 50:  # after 0.5 s: falls 20 dB/s at most
                g = min(1.0, self._mic_e / self._far_e)
                self._path_bound = max(g, 0.955 * self._path_bound)
            self._find_delay(near, x)
            ratio = float(np.dot(near, near)) / (float(np.dot(e, e)) + 1e-20)
            frame_db = 10 * math.log10(max(ratio, 1e-6))
            # a filter that had converged now makes the microphone louder for 0.2 s: the
            # echo path moved under it
            # (energies smoothed over ~0.1 s: with speech, single frames come and go)
            self._mic_s = 0.9 * self._mic_s + 0.1 * float(np.dot(near, near))
            self._err_s = 0.9 * self._err_s + 0.1 * float(np.dot(e, e))
            louder = self._err_s > 1.41 * self._mic_s  # by 1.5 dB
            self._peak_db = max(self.erle_db, self._peak_db - 0.01)
            self._worse = self._worse + 1 if louder and self._peak_db > 20.0 else 0
            if self._worse >= 20:
                self.restart()
                self._worse = 0
                self._peak_db = 0.0
            self.erle_db = 0.9 * self.erle_db + 0.1 * frame_db
            self._talk_hist[i] = frame_db < 6.0 and self._peak_db > 20.0
            # fit the loudspeaker model on frames the filter explains (no near end)
            if self.nonlinear and min(self.erle_db, frame_db) >= self.fit_after_db:
                self._fit_powers(near, xs)
        out = self._suppress(e, y, far_active) if self.suppress else e
        if far_active and float(np.dot(out, out)) < 0.1 * float(np.dot(near, near)):
            self.echo_only = True  # more than 10 dB taken out: the frame was echo
        return out

    def _suppress(self, e: np.ndarray, y: np.ndarray, far_active: bool) -> np.ndarray:
        f = self.f
        win = self._win
        E = np.fft.rfft(win * np.concatenate([self._e_prev, e]))
        Y = np.fft.rfft(win * np.concatenate([self._y_prev, y]))
        self._e_prev = e
        self._y_prev = y
        pe = E.real**2 + E.imag**2
        py = Y.real**2 + Y.imag**2
        # power spectra optionally smoothed over frames (off by default: in bench/echo.py's
        # office room, 0.2 cost 0.08 of double-talk PESQ-WB)
        b = self.smooth
        self._pe_s = pe = b * self._pe_s + (1 - b) * pe
        self._py_s = py = b * self._py_s + (1 - b) * py
        spy = float(np.sum(py))
        if far_active and spy > 1e-12:
            r = float(np.sum(pe)) / spy
            # the smallest recent share: falls to an echo-only frame at once, rises 6 dB/s
            self.leak = min(r, self.leak * 1.014)
            self.echo_only = r < 2.0 * self.leak  # within 3 dB of it: no near end
            if self.echo_only:
                ratio = np.clip(pe / (py + 1e-20), 1e-5, 1.0)
                self._leak_k = 0.8 * self._leak_k + 0.2 * ratio
        residual = self.oversub * self._leak_k * py + self.uncertainty * 0.5 * self._phi
        residual, pe = _across(residual, self.pool), _across(pe, self.pool)
        gain = _across(np.clip(1.0 - residual / (pe + 1e-20), self._floor, 1.0), self.spread)
        r = self.release
        gain = np.minimum(gain, r * self._gain + (1 - r) * gain)  # fall at once, rise slowly
        self._gain = gain
        out = win * np.fft.irfft(gain * E)
        frame = out[:f] + self._ola
        self._ola = out[f:]
        return frame
