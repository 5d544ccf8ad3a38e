"""An endpoint without a sound card: sources and sinks paced by the monotonic clock.

A thread plays the part of the sound card's clock. Block ``k`` is handled at
``t0 + k * period``; the input block handed over then was "captured" during the
period before it (``adc_s = t_k - period``) and the output block starts playing
then (``dac_s = t_k``), so an immediate input-to-output copy has one period of
latency, as on an ideal sound card. A tick missed by more than a few periods is
counted as an xrun and the clock is re-anchored rather than racing to catch up.
"""

from __future__ import annotations

import threading
import time

import numpy as np

from rtai.audio.endpoint import AudioCallback

_LATE_LIMIT_PERIODS = 4


class ClockedEndpoint:
    def __init__(self, source, sink, rate_hz: int, channels: int, block_frames: int) -> None:
        self.rate_hz = rate_hz
        self.channels = channels
        self.block_frames = block_frames
        self.source = source
        self.sink = sink
        self.period_s = block_frames / rate_hz
        self._xruns = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._out = np.zeros((block_frames, channels), dtype=np.float32)

    @property
    def xruns(self) -> int:
        return self._xruns

    @property
    def input_finished(self) -> bool:
        return bool(self.source.finished)

    def describe(self) -> str:
        return f"clocked {self.rate_hz} Hz, {self.channels} ch, {self.block_frames}-frame blocks"

    def start(self, callback: AudioCallback) -> None:
        self._thread = threading.Thread(
            target=self._run, args=(callback,), name="rtai-clock", daemon=True
        )
        self._thread.start()

    def _run(self, callback: AudioCallback) -> None:
        period = self.period_s
        t0 = time.monotonic() + period
        k = 0
        while not self._stop.is_set():
            t_k = t0 + k * period
            wait = t_k - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            elif -wait > _LATE_LIMIT_PERIODS * period:
                self._xruns += 1
                t0, k = time.monotonic(), 0
                t_k = t0
            indata = self.source.read(self.block_frames)
            callback(indata, self._out, t_k - period, t_k)
            self.sink.write(self._out)
            k += 1

    def stop(self, abort: bool = False) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2.0)
        self.source.close()
        self.sink.abort() if abort else self.sink.close()
