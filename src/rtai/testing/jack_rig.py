"""A JACK rig: a private JACK server with the dummy driver and one "sound card" per peer.

The dummy driver is clocked and sample-exact, so it stands in for real sound
cards on a machine without one. Each :class:`RigCard` is a JACK client with one
output port per channel (the peer's microphone: the rig plays a signal into it)
and one input port per channel (the peer's speaker: the rig records it). A peer
opens the card by its client name through PortAudio's JACK host API, which must
therefore be registered *before* the peer's process initialises PortAudio.

All positions are JACK frame times, so the delay from a sample entering one
card's microphone to it leaving another card's speaker is measured exactly.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import threading
import time

import numpy as np


class RigError(RuntimeError):
    pass


def jack_env(server: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        JACK_NO_START_SERVER="1",
        JACK_NO_AUDIO_RESERVATION="1",
        JACK_DEFAULT_SERVER=server,
    )
    return env


def jackd_available() -> bool:
    return shutil.which("jackd") is not None


class JackServer:
    """``jackd -n NAME -d dummy -r RATE -p PERIOD``, started and stopped by PID."""

    def __init__(self, name: str, rate_hz: int = 48000, period_frames: int = 128) -> None:
        self.name = name
        self.rate_hz = rate_hz
        self.period_frames = period_frames
        self.proc: subprocess.Popen | None = None

    def start(self, timeout_s: float = 10.0) -> JackServer:
        if not jackd_available():
            raise RigError("jackd is not installed (Debian package jackd2)")
        for k, v in jack_env(self.name).items():
            os.environ[k] = v  # PortAudio and jack.Client in this process use it
        self.proc = subprocess.Popen(
            [
                "jackd",
                "-n",
                self.name,
                "-d",
                "dummy",
                "-r",
                str(self.rate_hz),
                "-p",
                str(self.period_frames),
            ],
            env=jack_env(self.name),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        import jack

        deadline = time.monotonic() + timeout_s
        while True:
            if self.proc.poll() is not None:
                err = self.proc.stderr.read().decode(errors="replace")[-500:]
                raise RigError(f"jackd exited with {self.proc.returncode}: {err}")
            try:
                probe = jack.Client("rtai-probe", servername=self.name, no_start_server=True)
                probe.close()
                return self
            except jack.JackError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise RigError("jackd did not come up in time") from None
                time.sleep(0.1)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=5)

    def __enter__(self) -> JackServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


class RigCard:
    """One peer's sound card: plays ``signal`` into its microphone, records its speaker.

    ``record_seconds`` bounds the recording buffer (preallocated). Playback starts
    when :meth:`play` is called, at the next JACK cycle; :attr:`play_start_frame`
    then holds the JACK frame time of the signal's first sample.
    """

    def __init__(
        self, server: str, name: str, channels: int = 1, record_seconds: float = 30.0
    ) -> None:
        import jack

        self.client = jack.Client(name, servername=server, no_start_server=True)
        self.name = name
        self.channels = channels
        self.rate_hz = self.client.samplerate
        self.mics = [self.client.outports.register(f"mic_{i + 1}") for i in range(channels)]
        self.spks = [self.client.inports.register(f"spk_{i + 1}") for i in range(channels)]
        self._signal = np.zeros((0, channels), dtype=np.float32)
        self._pos = 0
        self._playing = False
        self.play_start_frame: int | None = None
        n = int(record_seconds * self.rate_hz)
        self._rec = np.zeros((n, channels), dtype=np.float32)
        self._rec_n = 0
        self.rec_start_frame: int | None = None
        self.xruns = 0
        self.xrun_frames: list[int] = []  # the JACK frame time as each xrun was reported
        self._lock = threading.Lock()
        self.client.set_process_callback(self._process)
        self.client.set_xrun_callback(self._xrun)
        self.client.activate()

    def _xrun(self, delay_usecs: float) -> None:
        self.xruns += 1
        self.xrun_frames.append(self.client.frame_time)

    def _process(self, frames: int) -> None:
        t = self.client.last_frame_time
        if self._playing:
            if self.play_start_frame is None:
                self.play_start_frame = t
            chunk = self._signal[self._pos : self._pos + frames]
            for i, port in enumerate(self.mics):
                buf = port.get_array()
                buf[: len(chunk)] = chunk[:, i]
                buf[len(chunk) :] = 0.0
            self._pos += frames
        else:
            for port in self.mics:
                port.get_array().fill(0.0)
        if self.rec_start_frame is None:
            self.rec_start_frame = t
        k = t - self.rec_start_frame
        if 0 <= k and k + frames <= len(self._rec):
            for i, port in enumerate(self.spks):
                self._rec[k : k + frames, i] = port.get_array()
            self._rec_n = max(self._rec_n, k + frames)

    def play(self, signal_: np.ndarray) -> None:
        sig = np.asarray(signal_, dtype=np.float32)
        if sig.ndim == 1:
            sig = np.repeat(sig[:, None], self.channels, axis=1)
        self._signal = sig
        self._pos = 0
        self.play_start_frame = None
        self._playing = True

    @property
    def playing_done(self) -> bool:
        return self._playing and self._pos >= len(self._signal)

    def recording(self) -> tuple[int, np.ndarray]:
        """(JACK frame time of the first recorded frame, the recording so far)."""
        return int(self.rec_start_frame or 0), self._rec[: self._rec_n].copy()

    def close(self) -> None:
        try:
            self.client.deactivate()
        finally:
            self.client.close()


def measure_delay_frames(
    played: np.ndarray, play_start_frame: int, recorded: np.ndarray, rec_start_frame: int
) -> tuple[int, float]:
    """JACK frames from a sample entering the microphone to it leaving the speaker,
    and the correlation of the aligned signals."""
    from rtai.dsp.align import aligned_correlation

    lag, corr = aligned_correlation(played, recorded)
    # recorded[n] ~ played[n - lag]; recorded[n] is at frame rec_start + n and
    # played[m] entered at play_start + m.
    return rec_start_frame + lag - play_start_frame, corr
