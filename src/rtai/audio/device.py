"""The sound-card endpoint: one full-duplex ``sounddevice`` stream in callback mode.

When only one side is a device (say ``--input speech --output 2``), the stream
is opened for that side alone and the other side is served from the source or
sink inside the same callback, so the card's clock drives everything.

Timing: PortAudio's ``inputBufferAdcTime``/``outputBufferDacTime`` are mapped to
``time.monotonic()`` through ``currentTime`` at each callback. They are not
trusted blindly: on JACK, Debian's PortAudio reports ``inputBufferAdcTime ==
currentTime`` and a DAC time one period later, yet a measured microphone to
speaker loop through the callback takes two periods. The capture actually
happened one period earlier than reported, so :data:`INPUT_CORRECTION_PERIODS`
holds that per host API, found by measuring the loop (tests/system); the
``input_correction_s`` argument overrides it for a card measured by hand.
"""

from __future__ import annotations

import time

import numpy as np

from rtai.audio.endpoint import AudioCallback, EndpointError

# Periods by which the reported ADC time is later than the true capture time,
# per host API name; measured with the JACK loop rig in tests/system.
INPUT_CORRECTION_PERIODS = {"JACK Audio Connection Kit": 1.0}


def _sd():
    try:
        import sounddevice
    except OSError as e:  # libportaudio2 missing
        raise EndpointError(
            f"PortAudio is not available ({e}); install libportaudio2, or use "
            "--input/--output files or signals, or try 'rtai demo'"
        ) from None
    return sounddevice


def no_device_hint() -> str:
    return (
        "no sound card found; use --input/--output with sound files or signals "
        "(e.g. --input speech --output received.wav), or try 'rtai demo'"
    )


class DeviceEndpoint:
    def __init__(
        self,
        rate_hz: int,
        channels: int,
        block_frames: int,
        input_device: int | str | None = None,
        output_device: int | str | None = None,
        source=None,
        sink=None,
        input_correction_s: float | None = None,
    ) -> None:
        sd = _sd()
        self.rate_hz = rate_hz
        self.channels = channels
        self.block_frames = block_frames
        self.source = source
        self.sink = sink
        self._xruns = 0
        self._stream = None
        self._names: list[str] = []
        try:
            devices = sd.query_devices()
        except Exception as e:
            raise EndpointError(f"cannot list audio devices ({e}); {no_device_hint()}") from None
        if len(devices) == 0:
            asked = [repr(d) for d in (input_device, output_device) if d is not None]
            prefix = f"no audio device {' or '.join(asked)}: " if asked else ""
            raise EndpointError(prefix + no_device_hint())
        use_in, use_out = source is None, sink is None
        in_info = self._resolve(sd, input_device, "input") if use_in else None
        out_info = self._resolve(sd, output_device, "output") if use_out else None
        host_api = None
        for info in (in_info, out_info):
            if info is not None:
                host_api = sd.query_hostapis(info["hostapi"])["name"]
                self._names.append(f"{info['name']} ({host_api})")
        period_s = block_frames / rate_hz
        if input_correction_s is None:
            input_correction_s = INPUT_CORRECTION_PERIODS.get(host_api or "", 0.0) * period_s
        self.input_correction_s = input_correction_s
        self._offset_s: float | None = None  # monotonic minus stream time, min-filtered
        self._creep_s = 200e-6 * period_s
        self._in_block = np.zeros((block_frames, channels), dtype=np.float32)
        self._out_block = np.zeros((block_frames, channels), dtype=np.float32)
        kwargs = dict(
            samplerate=rate_hz,
            blocksize=block_frames,
            channels=channels,
            dtype="float32",
            latency="low",
        )
        try:
            if use_in and use_out:
                self._stream = sd.Stream(
                    device=(in_info["index"], out_info["index"]),
                    callback=self._duplex_cb,
                    **kwargs,
                )
            elif use_in:
                self._stream = sd.InputStream(
                    device=in_info["index"], callback=self._input_cb, **kwargs
                )
            else:
                self._stream = sd.OutputStream(
                    device=out_info["index"], callback=self._output_cb, **kwargs
                )
        except Exception as e:
            raise EndpointError(
                f"cannot open audio device {' / '.join(self._names)} at {rate_hz} Hz, "
                f"{channels} ch, {block_frames}-frame blocks: {e}; check --rate/--channels "
                "or pick another device (rtai devices)"
            ) from None
        self._callback: AudioCallback | None = None

    @staticmethod
    def _resolve(sd, device: int | str | None, kind: str) -> dict:
        try:
            info = sd.query_devices(device, kind)
        except (ValueError, sd.PortAudioError) as e:
            what = "default" if device is None else repr(device)
            msg = str(e).splitlines()[0] if str(e) else "not found"
            raise EndpointError(
                f"no {kind} device {what}: {msg}; list devices with 'rtai devices'"
            ) from None
        return info

    # -- properties --------------------------------------------------------------------

    @property
    def xruns(self) -> int:
        return self._xruns

    @property
    def input_finished(self) -> bool:
        return bool(self.source is not None and self.source.finished)

    def describe(self) -> str:
        return (
            f"{' / '.join(self._names)}, {self.rate_hz} Hz, {self.channels} ch, "
            f"{self.block_frames}-frame blocks"
        )

    # -- PortAudio callbacks (real-time thread) -----------------------------------------

    def _times(self, t) -> tuple[float, float]:
        now = time.monotonic()
        cur = t.currentTime
        if cur <= 0.0:  # some host APIs give no times: assume an ideal card
            period = self.block_frames / self.rate_hz
            return now - period, now
        # The callback wakes some unknown time after the stream clock's currentTime:
        # track the smallest offset seen, allowed to creep up by 200 ppm of elapsed
        # time so it follows a sound card whose clock drifts against the monotonic one.
        raw = now - cur
        if self._offset_s is None or raw < self._offset_s:
            self._offset_s = raw
        else:
            self._offset_s += min(raw - self._offset_s, self._creep_s)
        offset = self._offset_s
        adc = (t.inputBufferAdcTime or cur) + offset - self.input_correction_s
        dac = (t.outputBufferDacTime or cur) + offset
        return adc, dac

    def _duplex_cb(self, indata, outdata, frames, t, status) -> None:
        if status:
            self._xruns += 1
        adc, dac = self._times(t)
        self._callback(indata, outdata, adc, dac)

    def _input_cb(self, indata, frames, t, status) -> None:
        if status:
            self._xruns += 1
        adc, dac = self._times(t)
        self._callback(indata, self._out_block, adc, dac)
        self.sink.write(self._out_block)

    def _output_cb(self, outdata, frames, t, status) -> None:
        if status:
            self._xruns += 1
        adc, dac = self._times(t)
        self._in_block[:] = self.source.read(frames)
        self._callback(self._in_block, outdata, adc, dac)

    # -- control -----------------------------------------------------------------------

    def start(self, callback: AudioCallback) -> None:
        self._callback = callback
        self._stream.start()

    def stop(self, abort: bool = False) -> None:
        if self._stream is not None:
            try:
                self._stream.stop()
            finally:
                self._stream.close()
        if self.source is not None:
            self.source.close()
        if self.sink is not None:
            self.sink.abort() if abort else self.sink.close()
