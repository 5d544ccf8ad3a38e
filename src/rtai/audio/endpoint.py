"""What a peer plays through: a sound card, or files and generated signals on a clock.

An endpoint calls ``callback(indata, outdata, adc_s, dac_s)`` once per block from
its own thread. ``indata`` is float32 (frames, channels) audio captured for the
block (from the microphone, a file or a generator); the callback fills
``outdata`` with what to play. ``adc_s`` is the ``time.monotonic()`` time at
which the first frame of ``indata`` was captured and ``dac_s`` the time at which
the first frame of ``outdata`` will leave the speaker. The callback runs on a
real-time thread: it must not block.

:func:`open_endpoint` picks the endpoint from the ``--input``/``--output``
specifications: a signal name (``tone:440``, ``speech``...), a sound file path,
``null`` for output that is thrown away, or a device (index or name substring).
When either side is a device, the sound card's clock drives the callback;
otherwise a thread paces blocks against the monotonic clock.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import numpy as np

from rtai.audio import files, signals

AudioCallback = Callable[[np.ndarray, np.ndarray, float, float], None]


class EndpointError(RuntimeError):
    """The audio input or output cannot be opened; the message says what to do."""


class Endpoint(Protocol):
    rate_hz: int
    channels: int
    block_frames: int

    def start(self, callback: AudioCallback) -> None: ...

    def stop(self, abort: bool = False) -> None:
        """Stop and close; ``abort`` discards file outputs instead of finishing them."""

    @property
    def xruns(self) -> int: ...

    @property
    def input_finished(self) -> bool: ...

    def describe(self) -> str: ...


class NullSink:
    """An output that discards everything (``--output null``)."""

    frames_written = 0

    def write(self, block: np.ndarray) -> None:
        pass

    def close(self) -> None:
        pass

    def abort(self) -> None:
        pass


def open_source(spec: str, rate_hz: int, channels: int, seconds: float | None):
    """A Source for a signal name or sound file path, or None for a device spec."""
    if signals.is_signal_spec(spec):
        return signals.make_signal(spec, rate_hz, channels, seconds)
    if files.is_file_spec(spec):
        return files.open_file_source(spec, rate_hz, channels)
    return None


def open_sink(spec: str, rate_hz: int, channels: int):
    """A sink for a sound file path or ``null``, or None for a device spec."""
    if spec == "null":
        return NullSink()
    if files.is_file_spec(spec):
        return files.FileSink(spec, rate_hz, channels)
    return None


def open_endpoint(
    input_spec: str | None,
    output_spec: str | None,
    rate_hz: int,
    channels: int,
    block_frames: int,
    seconds: float | None = None,
) -> Endpoint:
    """Build the endpoint for ``--input``/``--output``; None means the default device.

    Raises ``ValueError`` subclasses (bad spec or file) or :class:`EndpointError`
    (no such device) with a one-line message.
    """
    source = open_source(input_spec, rate_hz, channels, seconds) if input_spec else None
    try:
        sink = open_sink(output_spec, rate_hz, channels) if output_spec else None
    except Exception:
        if source is not None:
            source.close()
        raise
    in_device = None if source is not None else _device_spec(input_spec)
    out_device = None if sink is not None else _device_spec(output_spec)
    if source is not None and sink is not None:
        from rtai.audio.clocked import ClockedEndpoint

        return ClockedEndpoint(source, sink, rate_hz, channels, block_frames)
    from rtai.audio.device import DeviceEndpoint

    try:
        return DeviceEndpoint(
            rate_hz,
            channels,
            block_frames,
            input_device=in_device,
            output_device=out_device,
            source=source,
            sink=sink,
        )
    except Exception:
        if source is not None:
            source.close()
        if sink is not None:
            sink.abort()
        raise


def _device_spec(spec: str | None) -> int | str | None:
    if spec is None or spec == "default":
        return None
    return int(spec) if spec.isdigit() else spec
