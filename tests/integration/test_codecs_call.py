"""Real loopback calls with the rtai lossless and perceptual codecs."""

from __future__ import annotations

import signal
import time

import numpy as np
import pytest
import soundfile as sf

from rtai.audio.signals import speech
from rtai.config import PeerConfig
from rtai.dsp.align import find_lag, overlap
from rtai.netsim.model import ImpairmentConfig
from tests.integration.test_call_loopback import netsim_between

RATE = 48000


def on_grid(x: np.ndarray, bits: int) -> np.ndarray:
    """x put on the ``bits``-bit grid, as a sound card of that depth would give it."""
    scale = float(1 << (bits - 1))
    return (np.clip(np.rint(x * scale), -scale, scale - 1) / scale).astype(np.float32)


def cfg(codec: str, **kw) -> PeerConfig:
    # 10 ms blocks: two peers share this one Python process (and its GIL) here.
    kw.setdefault("block_frames", 480)
    return PeerConfig(codecs=(codec, "pcm"), buffer_ms=40, **kw)


def test_lossless_call_delivers_16_and_24_bit_audio_bit_exact(start_pair):
    a = on_grid(speech(RATE, 2.5, 0), 16)
    b = on_grid(speech(RATE, 2.0, 1) * 0.9, 24)  # 24-bit: not representable in L16
    pair = start_pair(a, b, cfg("lossless"), cfg("lossless"))
    pair.wait(15)
    summary = pair.listener.finished_calls[-1]
    assert summary["codec"] == "lossless"
    for s in (summary, pair.caller.finished_calls[-1]):
        assert s["lost"] == 0 and s["concealed"] == 0 and s["decode_errors"] == 0, str(s)
    heard = pair.listener_sink.data()[:, 0]
    lag = find_lag(b, heard)
    ref, got = overlap(b, heard, lag)
    assert ref.size == b.size
    np.testing.assert_array_equal(got, ref)  # every 24-bit sample, exactly
    heard = pair.caller_sink.data()[:, 0]
    lag = find_lag(a, heard)
    ref, got = overlap(a, heard, lag)
    nz = np.flatnonzero(got)
    ref, got = ref[nz[0] : nz[-1] + 1], got[nz[0] : nz[-1] + 1]
    assert ref.size > RATE
    np.testing.assert_array_equal(got, ref)


def test_lossless_loss_costs_only_the_lost_blocks(start_pair):
    n = 480
    impair = ImpairmentConfig(delay_ms=2, loss_pct=4, seed=5)
    relays, via = netsim_between(impair)
    b = on_grid(speech(RATE, 3.0, 1), 16)
    c = cfg("lossless", block_frames=n, redundancy=0)
    try:
        pair = start_pair(on_grid(speech(RATE, 3.5, 0), 16), b, c, c, via=via)
        pair.wait(20)
    finally:
        for r in relays:
            r.stop()
    summary = pair.listener.finished_calls[-1]
    assert summary["lost"] > 0 and summary["concealed"] > 0 and summary["decode_errors"] == 0
    heard = pair.listener_sink.data()[:, 0]
    lag = find_lag(b, heard)
    assert lag % n == 0  # blocks line up with the caller's blocks
    ref, got = overlap(b, heard, lag)
    blocks = ref.size // n
    ref = ref[: blocks * n].reshape(blocks, n)
    got = got[: blocks * n].reshape(blocks, n)
    exact = np.all(ref == got, axis=1)
    xfade = 48  # the concealer fades the first 1 ms of the block after a gap back in
    tail_exact = np.all(ref[:, xfade:] == got[:, xfade:], axis=1)
    lost = ~tail_exact
    # Every block is exact, or lost, or (right after a lost one) exact but for its fade-in.
    for k in np.flatnonzero(~exact):
        assert lost[k] or (k > 0 and lost[k - 1]), k
    assert 0 < lost.sum() <= summary["concealed"]
    assert exact.mean() > 0.85


def test_perceptual_call_holds_the_bit_rate_and_sounds_like_the_input(start_pair):
    b = speech(RATE, 3.0, 1)
    c = PeerConfig(codecs=("perceptual", "pcm"), buffer_ms=40, block_frames=480)
    c.encoder.bitrate_bps = 64000
    pair = start_pair(speech(RATE, 3.5, 0), b, c, c)
    pair.wait(15)
    summary = pair.listener.finished_calls[-1]
    assert summary["lost"] == 0 and summary["decode_errors"] == 0
    heard = pair.listener_sink.data()[:, 0]
    lag = find_lag(b, heard)
    ref, got = overlap(b, heard, lag)
    err = np.sum((ref - got) ** 2) / np.sum(ref**2)
    assert 10 * np.log10(1 / err) > 12  # SNR of a 64 kbit/s lossy speech coder
    call = pair.caller.finished_calls[-1]
    assert call["codec"] == "perceptual"
    # 64 kbit/s of payload plus RTP headers, averaged over the whole call.
    assert 55 < call["bitrate_kbps"] < 90, call["bitrate_kbps"]


@pytest.mark.parametrize("codec", ["lossless", "perceptual"])
def test_cli_call_with_rtai_codecs(tmp_path, codec):
    from tests.integration.test_cli import free_port, read_code, rtai, spawn

    said = on_grid(speech(RATE, 2.0, 1), 16)
    src = tmp_path / "say.wav"
    sf.write(src, said, RATE, subtype="PCM_16")
    port = free_port()
    listener = spawn("listen", "--bind", "127.0.0.1", "--port", str(port), "--input", "tone:330",
                     "--output", str(tmp_path / "heard.wav"), "--seconds", "15",
                     "--codec", codec, "--frame", "480", "--buffer", "40")  # fmt: skip
    try:
        code, _ = read_code(listener)
        caller = rtai("call", f"127.0.0.1:{port}", "--input", str(src), "--output", "null",
                      "--buffer", "40", "--codec", codec, "--frame", "480", "--bitrate", "96",
                      "--code", code, "-v")  # fmt: skip
        assert caller.returncode == 0, caller.stderr
        time.sleep(0.5)
        listener.send_signal(signal.SIGINT)
        _, err = listener.communicate(timeout=10)
        assert listener.returncode == 0, err
        assert codec in err
    finally:
        if listener.poll() is None:
            listener.kill()
            listener.communicate()
    heard, _ = sf.read(tmp_path / "heard.wav", dtype="float32")
    heard = heard if heard.ndim == 1 else heard[:, 0]
    lag = find_lag(said, heard)
    ref, got = overlap(said, heard, lag)
    if codec == "lossless":
        assert ref.size == said.size
        np.testing.assert_array_equal(got, ref)
    else:
        assert np.corrcoef(ref, got)[0, 1] > 0.95
