"""System tests: plain RTP between rtai and real third-party programs, over loopback.

ffmpeg sends L16 and Opus RTP (read from a WAV file, paced with ``-re``, its own
SDP file describing the stream) to ``rtai receive``, and so does GStreamer
(rtpL16pay, opusenc ! rtpopuspay); ``rtai send`` sends to ffmpeg
(reading the SDP rtai wrote) and to GStreamer (udpsrc, rtpjitterbuffer,
depayloader, opusdec). Each side writes a WAV file that is compared with the
source by cross-correlation, and for Opus also by PESQ when it is installed.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest
import soundfile as sf

from rtai.audio.signals import speech
from rtai.dsp.align import aligned_correlation

pytestmark = [
    pytest.mark.system,
    pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg is not installed"),
]

RATE = 48000
SECONDS = 3.0


def _free_port_pair() -> int:
    """An even port P with P and P+1 free (RTP and RTCP)."""
    for _ in range(50):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("127.0.0.1", 0))
        p = s.getsockname()[1] & ~1
        s.close()
        try:
            a = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            b = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            a.bind(("127.0.0.1", p))
            b.bind(("127.0.0.1", p + 1))
            a.close()
            b.close()
            return p
        except OSError:
            continue
    raise RuntimeError("no free UDP port pair")


def _rtai(*args: str) -> list[str]:
    return [sys.executable, "-m", "rtai", *args]


@pytest.fixture
def source_wav(tmp_path):
    x = speech(RATE, SECONDS, 0)
    path = tmp_path / "source.wav"
    sf.write(path, x, RATE, subtype="PCM_16")
    ref, _ = sf.read(path, dtype="float32")
    return path, ref


def _wait_line(proc: subprocess.Popen, words: str, timeout_s: float = 20.0) -> str:
    """Read the process's stderr until a line holds ``words``; the lines so far."""
    seen = []
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line:
            break
        seen.append(line)
        if words in line:
            return "".join(seen)
    raise AssertionError(f"no {words!r} from {proc.args[:4]}: {''.join(seen)[-800:]}")


def _pesq_wb(ref: np.ndarray, out: np.ndarray) -> float | None:
    try:
        from pesq import pesq
    except ImportError:
        return None
    from scipy.signal import resample_poly

    lag, _ = aligned_correlation(ref, out)
    if lag >= 0:
        out = out[lag:]
    else:
        ref = ref[-lag:]
    n = min(len(ref), len(out))
    r = resample_poly(ref[:n].astype(np.float64), 1, 3)
    d = resample_poly(out[:n].astype(np.float64), 1, 3)
    return float(pesq(16000, r, d, "wb"))


def _report(codec: str, lag: int, corr: float, ref: np.ndarray, got: np.ndarray) -> None:
    """The measured figures, shown with ``pytest -s`` (docs/interop.md quotes them)."""
    score = _pesq_wb(ref, _mono(got)) if codec == "opus" else None
    pesq = f", PESQ-WB {score:.2f}" if score is not None else ""
    test = os.environ.get("PYTEST_CURRENT_TEST", "").split(" ")[0]
    print(f"{test}: lag {lag} samples, correlation {corr:.4f}{pesq}")


def _mono(x: np.ndarray) -> np.ndarray:
    return x if x.ndim == 1 else x.mean(axis=1)


# -- ffmpeg -> rtai receive ------------------------------------------------------------


@pytest.mark.parametrize("codec", ["pcm", "opus"])
def test_ffmpeg_sends_rtp_to_rtai_receive(tmp_path, source_wav, codec):
    src, ref = source_wav
    port = _free_port_pair()
    sdp = tmp_path / "ffmpeg.sdp"
    enc = ["-c:a", "pcm_s16be"] if codec == "pcm" else ["-c:a", "libopus", "-b:a", "64k"]
    # ffmpeg writes the SDP before it sends; write it once without a listener.
    subprocess.run(
        ["ffmpeg", "-hide_banner", "-loglevel", "error", "-t", "0.05", "-i", str(src), "-ac",
         "1", *enc, "-f", "rtp", "-sdp_file", str(sdp), f"rtp://127.0.0.1:{port}"],
        check=True, timeout=30,
    )  # fmt: skip
    out = tmp_path / "rtai.wav"
    recv = subprocess.Popen(
        _rtai("receive", "--insecure", "--sdp", str(sdp), "--port", str(port),
              "--bind", "127.0.0.1", "--output", str(out), "--idle", "1.5", "--seconds", "30"),
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        _wait_line(recv, "waiting for")
        subprocess.run(
            ["ffmpeg", "-hide_banner", "-loglevel", "error", "-re", "-i", str(src), "-ac", "1",
             *enc, "-f", "rtp", f"rtp://127.0.0.1:{port}?rtcpport={port + 1}"],
            check=True, timeout=30,
        )  # fmt: skip
        assert recv.wait(timeout=20) == 0, recv.stderr.read()
        tail = recv.stderr.read()
    finally:
        if recv.poll() is None:
            recv.kill()
    assert "stream ended" in tail or "goodbye" in tail, tail
    got, rate = sf.read(out, dtype="float32")
    assert rate == RATE
    lag, corr = aligned_correlation(ref, _mono(got))
    _report(codec, lag, corr, ref, got)
    if codec == "pcm":
        assert corr >= 0.99, (lag, corr, tail)
    else:
        assert corr >= 0.95, (lag, corr, tail)
        score = _pesq_wb(ref, _mono(got))
        if score is not None:
            assert score >= 3.5, score


# -- rtai send -> ffmpeg ---------------------------------------------------------------


@pytest.mark.parametrize("codec", ["pcm", "opus"])
def test_rtai_sends_rtp_to_ffmpeg(tmp_path, source_wav, codec):
    src, ref = source_wav
    port = _free_port_pair()
    sdp = tmp_path / "rtai.sdp"
    out = tmp_path / "ffmpeg.wav"
    send = _rtai("send", f"127.0.0.1:{port}", "--insecure", "--codec", codec,
                 "--input", str(src), "--sdp-out", str(sdp), "-q")  # fmt: skip
    # --sdp-out is written before anything is sent: write it, with no audio, first.
    subprocess.run([*send[:-3], "--input", "silence", "--seconds", "0.01", "--sdp-out",
                    str(sdp), "-q"], check=True, timeout=30)  # fmt: skip
    ff = subprocess.Popen(
        ["ffmpeg", "-hide_banner", "-loglevel", "error", "-protocol_whitelist",
         "file,udp,rtp", "-i", str(sdp), "-y", str(out)],
        stdin=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        time.sleep(2.0)  # ffmpeg opens its sockets after probing its SDP
        subprocess.run(send, check=True, timeout=30)
        try:
            ff.wait(timeout=5)  # ffmpeg ends on the RTCP BYE
        except subprocess.TimeoutExpired:
            ff.send_signal(signal.SIGINT)  # writes the WAV header and exits
            ff.wait(timeout=10)
    finally:
        if ff.poll() is None:
            ff.kill()
    got, rate = sf.read(out, dtype="float32")
    assert rate == RATE and len(got) > 0.9 * len(ref), (rate, len(got), ff.stderr.read())
    lag, corr = aligned_correlation(ref, _mono(got))
    _report(codec, lag, corr, ref, got)
    if codec == "pcm":
        assert corr >= 0.99, (lag, corr)
    else:
        assert corr >= 0.95, (lag, corr)
        score = _pesq_wb(ref, _mono(got))
        if score is not None:
            assert score >= 3.5, score


# -- rtai send -> GStreamer ------------------------------------------------------------


def _gst_pipeline(port: int, codec: str, wav) -> list[str]:
    if codec == "pcm":
        caps = (
            "application/x-rtp,media=audio,clock-rate=48000,encoding-name=L16,channels=1,payload=96"
        )
        decode = ["rtpL16depay"]
    else:
        caps = "application/x-rtp,media=audio,clock-rate=48000,encoding-name=OPUS,payload=111"
        decode = ["rtpopusdepay", "!", "opusdec"]
    return [
        "gst-launch-1.0", "-e", "udpsrc", "address=127.0.0.1", f"port={port}", f"caps={caps}",
        "!", "rtpjitterbuffer", "latency=50", "!", *decode, "!", "audioconvert", "!",
        "audioresample", "!", "audio/x-raw,rate=48000,channels=1", "!", "wavenc", "!",
        "filesink", f"location={wav}",
    ]  # fmt: skip


@pytest.mark.skipif(shutil.which("gst-launch-1.0") is None, reason="GStreamer is not installed")
@pytest.mark.parametrize("codec", ["pcm", "opus"])
def test_rtai_sends_rtp_to_gstreamer(tmp_path, source_wav, codec):
    src, ref = source_wav
    port = _free_port_pair()
    out = tmp_path / "gst.wav"
    gst = subprocess.Popen(
        _gst_pipeline(port, codec, out), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True,
    )  # fmt: skip
    try:
        _wait_line_stdout(gst, "PLAYING")
        time.sleep(0.3)
        subprocess.run(
            _rtai("send", f"127.0.0.1:{port}", "--insecure", "--codec", codec,
                  "--input", str(src), "-q"),
            check=True, timeout=30,
        )  # fmt: skip
        time.sleep(0.5)
        gst.send_signal(signal.SIGINT)  # -e: end of stream, the WAV header is written
        gst.wait(timeout=10)
    finally:
        if gst.poll() is None:
            gst.kill()
    got, rate = sf.read(out, dtype="float32")
    assert rate == RATE and len(got) > 0.9 * len(ref), (rate, len(got))
    lag, corr = aligned_correlation(ref, _mono(got))
    _report(codec, lag, corr, ref, got)
    if codec == "pcm":
        assert corr >= 0.99, (lag, corr)
    else:
        assert corr >= 0.95, (lag, corr)
        score = _pesq_wb(ref, _mono(got))
        if score is not None:
            assert score >= 3.5, score


@pytest.mark.skipif(shutil.which("gst-launch-1.0") is None, reason="GStreamer is not installed")
@pytest.mark.parametrize("codec", ["pcm", "opus"])
def test_gstreamer_sends_rtp_to_rtai_receive(tmp_path, source_wav, codec):
    src, ref = source_wav
    port = _free_port_pair()
    out = tmp_path / "rtai.wav"
    if codec == "pcm":
        tail = ["audio/x-raw,format=S16BE,rate=48000,channels=1", "!", "rtpL16pay", "pt=96"]
        opts = ["--codec", "pcm", "--pt", "96", "--rate", "48000", "--channels", "1"]
    else:
        tail = ["audio/x-raw,rate=48000,channels=1", "!", "opusenc", "bitrate=64000", "!",
                "rtpopuspay", "pt=111"]  # fmt: skip
        opts = ["--codec", "opus", "--pt", "111"]
    recv = subprocess.Popen(
        _rtai("receive", "--insecure", *opts, "--port", str(port), "--bind", "127.0.0.1",
              "--output", str(out), "--idle", "1.5", "--seconds", "30"),
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        _wait_line(recv, "waiting for")
        # udpsink sync=true (its default) paces the file in real time.
        subprocess.run(
            ["gst-launch-1.0", "-q", "filesrc", f"location={src}", "!", "wavparse", "!",
             "audioconvert", "!", "audioresample", "!", *tail, "!", "udpsink",
             "host=127.0.0.1", f"port={port}"],
            check=True, timeout=30,
        )  # fmt: skip
        assert recv.wait(timeout=20) == 0, recv.stderr.read()
    finally:
        if recv.poll() is None:
            recv.kill()
    got, _ = sf.read(out, dtype="float32")
    lag, corr = aligned_correlation(ref, _mono(got))
    _report(codec, lag, corr, ref, got)
    assert corr >= (0.99 if codec == "pcm" else 0.95), (lag, corr)


def _wait_line_stdout(proc: subprocess.Popen, words: str, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    seen = []
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        seen.append(line)
        if words in line:
            return
    raise AssertionError(f"gst-launch did not reach {words}: {''.join(seen)[-800:]}")


def test_receive_refuses_without_insecure():
    r = subprocess.run(
        _rtai("receive", "--port", "5004"), capture_output=True, text=True, timeout=30
    )
    assert r.returncode == 2
    assert r.stderr.strip().count("\n") == 0 and "--insecure" in r.stderr
