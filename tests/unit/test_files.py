"""Tests for rtai.audio.files: reading sound files and writing them atomically."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from rtai.audio import files
from rtai.audio.files import (
    ArraySink,
    AudioFileError,
    FileSink,
    Sink,
    is_file_spec,
    open_file_source,
)
from rtai.audio.signals import Source


def tone(frequency_hz: float, rate_hz: int, seconds: float, amplitude: float = 0.25) -> np.ndarray:
    n = np.arange(round(rate_hz * seconds))
    return (amplitude * np.sin(2 * np.pi * frequency_hz * n / rate_hz)).astype(np.float32)


def peak_hz(x: np.ndarray, rate_hz: int) -> float:
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.fft.rfftfreq(len(x), 1 / rate_hz)[np.argmax(spectrum)])


def assert_one_line(err: pytest.ExceptionInfo[AudioFileError]) -> str:
    message = str(err.value)
    assert message and "\n" not in message
    return message


def read_all(src: Source) -> np.ndarray:
    blocks = []
    while not src.finished:
        blocks.append(src.read(1000))
    return np.concatenate(blocks)


# --- is_file_spec ------------------------------------------------------------------


@pytest.mark.parametrize(
    "spec", ["in.wav", "out.WAV", "dir/x.flac", "/tmp/a.ogg", "a.aiff", "b.au", "c.opus"]
)
def test_paths_with_audio_extensions_are_file_specs(spec: str) -> None:
    assert is_file_spec(spec)


@pytest.mark.parametrize(
    "spec", ["tone:440", "speech", "default", "hw:0,0", "notes.txt", "", "wav"]
)
def test_other_strings_are_not_file_specs(spec: str) -> None:
    assert not is_file_spec(spec)


# --- open_file_source --------------------------------------------------------------


def test_reads_file_at_matching_rate_exactly(tmp_path: Path) -> None:
    data = np.stack([tone(440, 48000, 0.5), tone(660, 48000, 0.5)], axis=1)
    path = tmp_path / "in.wav"
    sf.write(path, data, 48000, subtype="FLOAT")
    src = open_file_source(path, 48000, 2)
    assert (src.rate_hz, src.channels) == (48000, 2)
    out = read_all(src)
    np.testing.assert_array_equal(out[: len(data)], data)
    np.testing.assert_array_equal(out[len(data) :], 0)
    assert src.finished


def test_resampling_44k1_to_48k_keeps_the_tone_frequency(tmp_path: Path) -> None:
    path = tmp_path / "cd.wav"
    sf.write(path, tone(1000, 44100, 1.0), 44100, subtype="PCM_16")
    src = open_file_source(path, 48000, 1)
    assert src.rate_hz == 48000
    out = read_all(src)[:, 0]
    assert abs(len(out) - 48000) <= 1000  # one second, give or take the last read
    assert abs(peak_hz(out[:48000], 48000) - 1000) <= 1.0
    middle = out[10000:38000]
    assert np.max(np.abs(middle)) == pytest.approx(0.25, abs=0.01)


def test_rate_mismatch_without_resampling_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "cd.wav"
    sf.write(path, tone(1000, 44100, 0.1), 44100)
    with pytest.raises(AudioFileError) as err:
        open_file_source(path, 48000, 1, resample=False)
    message = assert_one_line(err)
    assert "44100" in message and "48000" in message
    assert "resampl" in message  # says what to do


def test_mono_file_is_duplicated_to_stereo(tmp_path: Path) -> None:
    path = tmp_path / "mono.wav"
    data = tone(500, 16000, 0.2)
    sf.write(path, data, 16000, subtype="FLOAT")
    out = open_file_source(path, 16000, 2).read(len(data))
    np.testing.assert_array_equal(out[:, 0], data)
    np.testing.assert_array_equal(out[:, 1], data)


def test_stereo_file_is_averaged_to_mono(tmp_path: Path) -> None:
    path = tmp_path / "stereo.wav"
    left, right = tone(500, 16000, 0.2), tone(700, 16000, 0.2)
    sf.write(path, np.stack([left, right], axis=1), 16000, subtype="FLOAT")
    out = open_file_source(path, 16000, 1).read(len(left))
    np.testing.assert_allclose(out[:, 0], (left + right) / 2, atol=1e-7)


def test_other_channel_mismatch_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "three.wav"
    sf.write(path, np.zeros((100, 3), np.float32), 16000)
    with pytest.raises(AudioFileError) as err:
        open_file_source(path, 16000, 2)
    assert "3 channels" in assert_one_line(err)


def test_missing_file_is_a_one_line_error(tmp_path: Path) -> None:
    with pytest.raises(AudioFileError) as err:
        open_file_source(tmp_path / "x.wav", 48000, 1)
    message = assert_one_line(err)
    assert message.startswith("cannot read input file") and "x.wav" in message
    assert "no such file" in message


def test_garbage_file_is_a_one_line_error(tmp_path: Path) -> None:
    path = tmp_path / "junk.wav"
    path.write_bytes(b"this is not a wave file\n" * 10)
    with pytest.raises(AudioFileError) as err:
        open_file_source(path, 48000, 1)
    assert "junk.wav" in assert_one_line(err)


def test_directory_is_a_one_line_error(tmp_path: Path) -> None:
    with pytest.raises(AudioFileError) as err:
        open_file_source(tmp_path, 48000, 1)
    assert_one_line(err)


def test_audio_file_error_is_a_value_error() -> None:
    assert issubclass(AudioFileError, ValueError)


# --- FileSink ----------------------------------------------------------------------


def test_file_sink_appears_only_on_close_and_round_trips_pcm16(tmp_path: Path) -> None:
    path = tmp_path / "out.wav"
    rng = np.random.default_rng(1)
    data = rng.uniform(-0.9, 0.9, (4800, 2)).astype(np.float32)
    sink = FileSink(path, 48000, 2, subtype="PCM_16")
    assert isinstance(sink, Sink)
    for start in range(0, len(data), 480):
        sink.write(data[start : start + 480])
    assert not path.exists()
    assert Path(sink.temp_path).parent == tmp_path
    sink.close()
    assert path.exists()
    assert not Path(sink.temp_path).exists()
    assert sink.frames_written == len(data)
    back, rate_hz = sf.read(path, dtype="float32", always_2d=True)
    assert rate_hz == 48000 and back.shape == data.shape
    assert np.max(np.abs(back - data)) <= 1 / 32768 + 1e-7  # PCM_16 quantisation
    info = sf.info(path)
    assert info.subtype == "PCM_16"
    assert os.listdir(tmp_path) == ["out.wav"]


def test_file_sink_float_round_trip_is_exact(tmp_path: Path) -> None:
    path = tmp_path / "out.wav"
    data = np.linspace(-1, 1, 1000, dtype=np.float32)[:, np.newaxis]
    with FileSink(path, 16000, 1, subtype="FLOAT") as sink:
        sink.write(data[:500])
        sink.write(data[500:, 0])  # a mono vector is accepted for one channel
    back, _ = sf.read(path, dtype="float32", always_2d=True)
    np.testing.assert_array_equal(back, data)


def test_file_sink_clips_pcm_instead_of_wrapping(tmp_path: Path) -> None:
    path = tmp_path / "loud.wav"
    with FileSink(path, 16000, 1) as sink:
        sink.write(np.array([[2.0], [-2.0], [0.5]], np.float32))
    back, _ = sf.read(path, dtype="float32")
    assert back[0] > 0.99 and back[1] <= -0.99 and back[2] == pytest.approx(0.5, abs=1e-4)


def test_file_sink_copies_blocks_so_callers_may_reuse_buffers(tmp_path: Path) -> None:
    path = tmp_path / "reuse.wav"
    buffer = np.zeros((100, 1), np.float32)
    with FileSink(path, 16000, 1, subtype="FLOAT") as sink:
        for value in (0.1, 0.2, 0.3):
            buffer[:] = value
            sink.write(buffer)
    back, _ = sf.read(path, dtype="float32")
    np.testing.assert_allclose(back[::100], [0.1, 0.2, 0.3])


def test_file_sink_abort_removes_temp_and_leaves_target_untouched(tmp_path: Path) -> None:
    path = tmp_path / "keep.wav"
    path.write_bytes(b"old content")
    sink = FileSink(path, 48000, 1)
    sink.write(np.ones((480, 1), np.float32) * 0.1)
    temp = Path(sink.temp_path)
    assert temp.exists()
    sink.abort()
    assert not temp.exists()
    assert path.read_bytes() == b"old content"
    assert os.listdir(tmp_path) == ["keep.wav"]
    sink.close()  # no effect after abort
    assert path.read_bytes() == b"old content"


def test_file_sink_context_manager_aborts_on_exception(tmp_path: Path) -> None:
    path = tmp_path / "out.wav"
    with pytest.raises(RuntimeError), FileSink(path, 48000, 1) as sink:
        sink.write(np.zeros((10, 1), np.float32))
        raise RuntimeError("boom")
    assert os.listdir(tmp_path) == []


def test_file_sink_writes_after_close_are_dropped_and_counted(tmp_path: Path) -> None:
    sink = FileSink(tmp_path / "out.wav", 48000, 1)
    sink.write(np.zeros((10, 1), np.float32))
    sink.close()
    sink.close()  # idempotent
    sink.write(np.zeros((7, 1), np.float32))
    assert sink.frames_written == 10 and sink.frames_dropped == 7
    assert sf.info(tmp_path / "out.wav").frames == 10


def test_file_sink_rejects_wrong_block_shape(tmp_path: Path) -> None:
    sink = FileSink(tmp_path / "out.wav", 48000, 2)
    with pytest.raises(ValueError):
        sink.write(np.zeros((10, 1), np.float32))
    sink.abort()


def test_file_sink_accepts_writes_from_another_thread(tmp_path: Path) -> None:
    path = tmp_path / "threaded.flac"
    block = np.full((256, 1), 0.25, np.float32)
    sink = FileSink(path, 48000, 1)

    def produce() -> None:
        for _ in range(200):
            sink.write(block)

    thread = threading.Thread(target=produce)
    thread.start()
    thread.join()
    sink.close()
    back, _ = sf.read(path, dtype="float32")
    assert len(back) == 200 * 256
    np.testing.assert_allclose(back, 0.25, atol=1e-4)


@pytest.mark.parametrize("name", ["out.flac", "out.ogg", "out.aiff", "out.au"])
def test_file_sink_writes_other_formats(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    data = tone(440, 48000, 0.3)[:, np.newaxis]
    with FileSink(path, 48000, 1) as sink:
        sink.write(data)
    back, rate_hz = sf.read(path, dtype="float32", always_2d=True)
    assert rate_hz == 48000
    assert abs(len(back) - len(data)) <= 2048
    assert abs(peak_hz(back[:, 0], 48000) - 440) <= 5


def test_file_sink_unknown_extension_is_a_one_line_error(tmp_path: Path) -> None:
    with pytest.raises(AudioFileError) as err:
        FileSink(tmp_path / "out.txt", 48000, 1)
    message = assert_one_line(err)
    assert ".txt" in message and ".wav" in message
    assert os.listdir(tmp_path) == []


def test_file_sink_impossible_subtype_is_a_one_line_error(tmp_path: Path) -> None:
    with pytest.raises(AudioFileError) as err:
        FileSink(tmp_path / "out.flac", 48000, 1, subtype="FLOAT")
    assert "FLOAT" in assert_one_line(err)
    assert os.listdir(tmp_path) == []


def test_file_sink_missing_directory_is_a_one_line_error(tmp_path: Path) -> None:
    with pytest.raises(AudioFileError) as err:
        FileSink(tmp_path / "nope" / "out.wav", 48000, 1)
    assert "does not exist" in assert_one_line(err)


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write anywhere")
def test_file_sink_unwritable_directory_is_a_one_line_error(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        with pytest.raises(AudioFileError) as err:
            FileSink(locked / "out.wav", 48000, 1)
        assert "not writable" in assert_one_line(err)
    finally:
        locked.chmod(0o700)


def test_file_sink_write_failure_is_reported_by_close(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "out.wav"
    sink = FileSink(path, 48000, 1)

    def fail(block: np.ndarray) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(sink._file, "write", fail)
    sink.write(np.zeros((10, 1), np.float32))
    with pytest.raises(AudioFileError) as err:
        sink.close()
    assert "No space left" in assert_one_line(err)
    assert os.listdir(tmp_path) == []


def test_write_formats_are_known_extensions() -> None:
    for ext in files.WRITE_FORMATS:
        assert is_file_spec("x" + ext)


# --- ArraySink ---------------------------------------------------------------------


def test_array_sink_collects_blocks_in_order() -> None:
    sink = ArraySink(48000, 2)
    assert isinstance(sink, Sink)
    assert sink.data().shape == (0, 2)
    a = np.ones((3, 2), np.float32)
    b = np.full((2, 2), 0.5, np.float32)
    sink.write(a)
    sink.write(b)
    a[:] = 9  # the sink kept a copy
    out = sink.data()
    assert out.shape == (5, 2) and out.dtype == np.float32
    np.testing.assert_array_equal(out[:3], 1)
    np.testing.assert_array_equal(out[3:], 0.5)
    assert sink.frames_written == 5
    sink.close()
    sink.abort()
    assert sink.data().shape == (0, 2)


def test_file_sink_on_a_directory_is_a_one_line_error(tmp_path: Path) -> None:
    with pytest.raises(AudioFileError) as err:
        FileSink(tmp_path, 48000, 1)
    assert "directory" in assert_one_line(err)


def test_file_sink_format_refusing_the_rate_is_a_one_line_error(tmp_path: Path) -> None:
    with pytest.raises(AudioFileError) as err:
        FileSink(tmp_path / "out.opus", 44100, 1)
    message = assert_one_line(err)
    assert "out.opus" in message and ".part" not in message
    assert os.listdir(tmp_path) == []
