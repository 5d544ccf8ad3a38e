"""Sound files: the audio edge used when ``--input`` or ``--output`` names a file.

Reading loads the whole file into memory, adapts rate and channel count, and hands out
an :class:`~rtai.audio.signals.ArraySource`. Writing goes through :class:`FileSink`,
whose :meth:`FileSink.write` is safe to call from a real-time audio callback: it only
copies the block onto a queue; a background thread does the file I/O into a temporary
file next to the target, which :meth:`FileSink.close` renames into place, so the output
file appears complete or not at all.
"""

from __future__ import annotations

import math
import os
import queue
import secrets
import threading
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np
import soundfile as sf
from scipy.signal import resample_poly

from rtai.audio.signals import ArraySource, Source, is_signal_spec

__all__ = [
    "ArraySink",
    "AudioFileError",
    "FileSink",
    "Sink",
    "WRITE_FORMATS",
    "is_file_spec",
    "open_file_source",
]


class AudioFileError(ValueError):
    """A sound file cannot be read or written; the message is one line for the user."""


# Extension -> (libsndfile major format, default subtype) for files we can write.
WRITE_FORMATS: dict[str, tuple[str, str]] = {
    ".wav": ("WAV", "PCM_16"),
    ".wave": ("WAV", "PCM_16"),
    ".flac": ("FLAC", "PCM_16"),
    ".ogg": ("OGG", "VORBIS"),
    ".oga": ("OGG", "VORBIS"),
    ".opus": ("OGG", "OPUS"),
    ".aiff": ("AIFF", "PCM_16"),
    ".aif": ("AIFF", "PCM_16"),
    ".aifc": ("AIFF", "PCM_16"),
    ".au": ("AU", "PCM_16"),
    ".snd": ("AU", "PCM_16"),
    ".caf": ("CAF", "PCM_16"),
    ".w64": ("W64", "PCM_16"),
    ".rf64": ("RF64", "PCM_16"),
}
# Readable as well (libsndfile detects the format from the content).
READ_EXTENSIONS = frozenset(WRITE_FORMATS) | {".mp3"}


def _one_line(text: object) -> str:
    return " ".join(str(text).split())


def _extension(path: str | os.PathLike[str]) -> str:
    return Path(os.fspath(path)).suffix.lower()


def is_file_spec(s: str) -> bool:
    """True if ``s`` looks like a path to a sound file (ends in .wav, .flac, .ogg, ...)."""
    if not s or is_signal_spec(s):
        return False
    return _extension(s) in READ_EXTENSIONS


# --- reading -------------------------------------------------------------------------


def _read_error(path: str, why: object) -> AudioFileError:
    return AudioFileError(f"cannot read input file {path}: {_one_line(why)}")


def _resample(data: np.ndarray, from_hz: int, to_hz: int) -> np.ndarray:
    g = math.gcd(from_hz, to_hz)
    out = resample_poly(data.astype(np.float64), to_hz // g, from_hz // g, axis=0)
    return np.clip(out, -1.0, 1.0).astype(np.float32)


def _adapt_channels(data: np.ndarray, channels: int, path: str) -> np.ndarray:
    file_channels = data.shape[1]
    if file_channels == channels:
        return data
    if file_channels == 1:
        return np.repeat(data, channels, axis=1)
    if file_channels == 2 and channels == 1:
        return data.mean(axis=1, keepdims=True, dtype=np.float32)
    raise AudioFileError(
        f"input file {path} has {file_channels} channels but {channels} are needed: "
        f"convert it first (e.g. sox {path} -c {channels} out.wav)"
    )


def open_file_source(
    path: str | os.PathLike[str], rate_hz: int, channels: int, resample: bool = True
) -> Source:
    """Read a whole sound file into a :class:`Source` at ``rate_hz`` with ``channels``.

    A file at another rate is resampled (polyphase, scipy.signal.resample_poly) when
    ``resample`` is True, else AudioFileError. A mono file is duplicated onto every
    channel; a stereo file is averaged to mono; other channel mismatches are an
    AudioFileError, as is a missing or unreadable file.
    """
    name = os.fspath(path)
    if rate_hz <= 0:
        raise ValueError(f"sample rate must be positive, got {rate_hz} Hz")
    if channels < 1:
        raise ValueError(f"channel count must be at least 1, got {channels}")
    if not os.path.exists(name):
        raise _read_error(name, "no such file")
    if os.path.isdir(name):
        raise _read_error(name, "it is a directory")
    try:
        data, file_rate_hz = sf.read(name, dtype="float32", always_2d=True)
    except sf.LibsndfileError as exc:
        raise _read_error(name, f"not a readable sound file ({exc.error_string})") from None
    except (OSError, RuntimeError, TypeError) as exc:
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        raise _read_error(name, why) from None
    file_rate_hz = int(file_rate_hz)
    if file_rate_hz != rate_hz:
        if not resample:
            raise AudioFileError(
                f"input file {name} is {file_rate_hz} Hz but the session runs at {rate_hz} Hz: "
                f"allow resampling or convert it (e.g. sox {name} -r {rate_hz} out.wav)"
            )
        data = _resample(data, file_rate_hz, rate_hz)
    data = _adapt_channels(data, channels, name)
    return ArraySource(np.ascontiguousarray(data), rate_hz)


# --- writing -------------------------------------------------------------------------


@runtime_checkable
class Sink(Protocol):
    """Something that consumes audio blocks shaped ``(frames, channels)``."""

    rate_hz: int
    channels: int

    def write(self, block: np.ndarray) -> None: ...

    def close(self) -> None: ...

    def abort(self) -> None: ...


def _as_block(block: np.ndarray, channels: int) -> np.ndarray:
    """Check the block's shape and return a float32 copy shaped (frames, channels)."""
    array = np.array(block, dtype=np.float32, copy=True)
    if array.ndim == 1 and channels == 1:
        array = array[:, np.newaxis]
    if array.ndim != 2 or array.shape[1] != channels:
        raise ValueError(f"expected a block shaped (frames, {channels}), got {array.shape}")
    return array


class ArraySink:
    """A :class:`Sink` that keeps every block in memory (for tests and the demo)."""

    def __init__(self, rate_hz: int, channels: int) -> None:
        if rate_hz <= 0:
            raise ValueError(f"sample rate must be positive, got {rate_hz} Hz")
        if channels < 1:
            raise ValueError(f"channel count must be at least 1, got {channels}")
        self.rate_hz = int(rate_hz)
        self.channels = int(channels)
        self._blocks: list[np.ndarray] = []
        self.frames_written = 0

    def write(self, block: np.ndarray) -> None:
        """Append a copy of ``block``. Cheap enough for an audio callback."""
        array = _as_block(block, self.channels)
        self._blocks.append(array)
        self.frames_written += array.shape[0]

    def data(self) -> np.ndarray:
        """Everything written so far, float32 shaped ``(frames, channels)``."""
        if not self._blocks:
            return np.zeros((0, self.channels), dtype=np.float32)
        # A list append and a list copy are each atomic under the GIL, so this may run
        # while another thread writes.
        return np.concatenate(list(self._blocks), axis=0)

    def close(self) -> None:
        pass

    def abort(self) -> None:
        self._blocks.clear()


_STOP = None  # queue sentinel for the writer thread


class FileSink:
    """Write audio to a sound file without blocking the caller.

    ``write()`` may be called from the real-time audio thread: it copies the block onto
    a ``queue.SimpleQueue`` and returns. A background thread writes the blocks into a
    hidden temporary file in the target's directory. ``close()`` drains the queue, closes
    and fsyncs the file and renames it onto ``path`` (os.replace), so ``path`` holds the
    complete recording or is untouched. ``abort()`` deletes the temporary file instead.
    Use as a context manager to close on success and abort on an exception.

    ``subtype`` is a libsndfile subtype such as "PCM_16" or "FLOAT"; None picks the
    format's default (PCM_16, or VORBIS/OPUS for .ogg/.opus). Integer subtypes clip
    samples to [-1, 1].
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        rate_hz: int,
        channels: int,
        subtype: str | None = None,
    ) -> None:
        self.path = os.fspath(path)
        if rate_hz <= 0:
            raise ValueError(f"sample rate must be positive, got {rate_hz} Hz")
        if channels < 1:
            raise ValueError(f"channel count must be at least 1, got {channels}")
        self.rate_hz = int(rate_hz)
        self.channels = int(channels)
        if os.path.isdir(self.path):
            raise AudioFileError(f"cannot write output file {self.path}: it is a directory")
        ext = _extension(self.path)
        if ext not in WRITE_FORMATS:
            known = " ".join(sorted(WRITE_FORMATS))
            what = f"unknown extension {ext!r}" if ext else "no file extension"
            raise AudioFileError(
                f"cannot write output file {self.path}: {what}, use one of {known}"
            )
        file_format, default_subtype = WRITE_FORMATS[ext]
        self.subtype = (subtype or default_subtype).upper()
        if not sf.check_format(file_format, self.subtype):
            raise AudioFileError(
                f"cannot write output file {self.path}: {ext} files cannot hold {self.subtype} "
                f"samples, use {default_subtype}"
            )
        self._clip = self.subtype.startswith(("PCM", "ULAW", "ALAW", "DPCM", "DWVW"))
        self._tmp_path = self._create_temp()
        try:
            self._file = sf.SoundFile(
                self._tmp_path,
                mode="w",
                samplerate=self.rate_hz,
                channels=self.channels,
                format=file_format,
                subtype=self.subtype,
            )
        except (sf.LibsndfileError, RuntimeError, OSError, ValueError) as exc:
            self._remove_temp()
            why = exc.error_string if isinstance(exc, sf.LibsndfileError) else exc
            why = _one_line(why).removeprefix("Error : ")
            raise AudioFileError(f"cannot write output file {self.path}: {why}") from None

        self.frames_written = 0  # frames accepted by write(); all on disk after close()
        self.frames_dropped = 0  # frames passed to write() after close/abort or a failure
        self._queue: queue.SimpleQueue[np.ndarray | None] = queue.SimpleQueue()
        self._error: BaseException | None = None
        self._open = True
        self._writer = threading.Thread(
            target=self._write_loop, name=f"FileSink {os.path.basename(self.path)}", daemon=True
        )
        self._writer.start()

    def _create_temp(self) -> str:
        directory = os.path.dirname(os.path.abspath(self.path))
        if not os.path.isdir(directory):
            raise AudioFileError(
                f"cannot write output file {self.path}: directory {directory} does not exist"
            )
        if not os.access(directory, os.W_OK | os.X_OK):
            raise AudioFileError(
                f"cannot write output file {self.path}: directory {directory} is not writable"
            )
        base = os.path.basename(self.path)
        for _ in range(100):
            tmp = os.path.join(directory, f".{base}.{secrets.token_hex(4)}.part")
            try:
                # Created with the usual permissions (0o666 less the umask), unlike mkstemp.
                fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
            except FileExistsError:
                continue
            except OSError as exc:
                raise AudioFileError(
                    f"cannot write output file {self.path}: {_one_line(exc.strerror or exc)}"
                ) from None
            os.close(fd)
            return tmp
        raise AudioFileError(f"cannot write output file {self.path}: no free temporary name")

    def _remove_temp(self) -> None:
        try:
            os.unlink(self._tmp_path)
        except FileNotFoundError:
            pass

    @property
    def temp_path(self) -> str:
        """The hidden file being written until close() renames it to ``path``."""
        return self._tmp_path

    def write(self, block: np.ndarray) -> None:
        """Queue a copy of ``block`` (frames, channels) for writing. Never blocks on I/O.

        Thread context: any single producer thread, typically the audio callback.
        Blocks written after close()/abort() or after a write failure are dropped and
        counted in ``frames_dropped``; the failure itself is raised by close().
        """
        array = _as_block(block, self.channels)
        if not self._open or self._error is not None:
            self.frames_dropped += array.shape[0]
            return
        self._queue.put(array)
        self.frames_written += array.shape[0]

    def _write_loop(self) -> None:
        while True:
            block = self._queue.get()
            if block is _STOP:
                return
            if self._error is not None:
                continue  # keep draining so the producer never sees a stall
            try:
                if self._clip:
                    np.clip(block, -1.0, 1.0, out=block)
                self._file.write(block)
            except Exception as exc:  # reported by close()
                self._error = exc

    def _stop_writer(self) -> None:
        self._open = False
        self._queue.put(_STOP)
        self._writer.join()

    def close(self) -> None:
        """Write everything queued, finish the file and rename it onto ``path``.

        Raises AudioFileError (and removes the temporary file) if writing failed.
        Calling close() again, or after abort(), does nothing.
        """
        if not self._open:
            return
        self._stop_writer()
        try:
            if self._error is not None:
                raise self._error
            self._file.close()
            fd = os.open(self._tmp_path, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(self._tmp_path, self.path)
        except Exception as exc:
            if not self._file.closed:
                self._file.close()
            self._remove_temp()
            why = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
            raise AudioFileError(
                f"could not write output file {self.path}: {_one_line(why)}"
            ) from None
        _fsync_directory(os.path.dirname(os.path.abspath(self.path)))

    def abort(self) -> None:
        """Stop writing and delete the temporary file; ``path`` is left untouched."""
        if not self._open:
            return
        self._stop_writer()
        try:
            self._file.close()
        except Exception:  # the file is being thrown away
            pass
        self._remove_temp()

    @property
    def closed(self) -> bool:
        return not self._open

    def __enter__(self) -> FileSink:
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def _fsync_directory(directory: str) -> None:
    """Make a rename durable (POSIX); best effort, ignored where unsupported."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
