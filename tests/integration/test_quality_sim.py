"""The quality benchmark's simulation harness (bench/_quality_sim.py), with real codecs.

The harness runs MediaSender -> netsim Impairment -> MediaReceiver on a simulated
clock, with RTCP both ways driving PathAdapter. These tests pin what the benchmark's
numbers rest on: the path is transparent without loss, FEC really rebuilds blocks and
helps, and the adaptive mode adapts from simulated RTCP alone.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
import _quality_sim as qs  # noqa: E402

from rtai.codecs import CodecError  # noqa: E402

SECONDS = 5.0

try:
    from rtai.codecs import libopus

    libopus.load()
    HAVE_OPUS = True
except Exception:  # libopus missing
    HAVE_OPUS = False

needs_opus = pytest.mark.skipif(not HAVE_OPUS, reason="libopus not installed")

PCM = qs.Mode("pcm", "PCM", codec="pcm")
OPUS = qs.Mode("opus", "Opus, no FEC")
OPUS_FEC = qs.Mode("opus-fec", "Opus, FEC", fec="on", loss_hint="loss")
OPUS_AUTO = qs.Mode("opus-auto", "Opus default", fec="auto", adaptive=True, redundancy=None)


@pytest.fixture(scope="module")
def speech() -> np.ndarray:
    return qs.two_voices(qs.RATE_HZ, SECONDS)


def test_pcm_path_is_bit_exact_without_loss(speech):
    run = qs.simulate(speech, PCM, qs.Condition(0))
    lag, aligned = qs.align(speech, run.output)
    expected = np.clip(np.rint(speech * 32768.0), -32768, 32767).astype(np.float32) / 32768.0
    sent = run.sent_packets * run.block_frames  # a last partial block is never sent
    assert run.sent_packets == speech.size // run.block_frames
    assert np.array_equal(aligned[:sent], expected[:sent])
    # The delay read from the audio is the path's: packetization + 20 ms + jitter + buffer.
    assert 70.0 < (run.t_out0_s + lag / qs.RATE_HZ) * 1000.0 < 90.0
    assert run.network["dropped_loss"] == 0
    assert run.jitter["late"] == 0


@needs_opus
def test_opus_path_correlates_with_input_without_loss(speech):
    run = qs.simulate(speech, OPUS, qs.Condition(0))
    sc = qs.score(speech, run.output, run.t_out0_s)
    assert sc.correlation > 0.8
    # The lag holds the codec lookahead on top of what PCM sees.
    pcm = qs.simulate(speech, PCM, qs.Condition(0))
    pcm_lag, _ = qs.align(speech, pcm.output)
    assert abs((sc.lag_frames - pcm_lag) - run.lookahead_frames) <= 8
    assert sc.lag_spread_ms < 1.0


@needs_opus
def test_fec_rebuilds_lost_blocks_and_beats_no_fec_at_10_percent(speech):
    cond = qs.Condition(10)
    with_fec = qs.simulate(speech, OPUS_FEC, cond)
    without = qs.simulate(speech, OPUS, cond)
    assert with_fec.receive["fec_recovered"] > 0
    assert without.receive["fec_recovered"] == 0
    # Same seed: the same packets were lost in both runs.
    assert with_fec.network == without.network
    assert np.array_equal(with_fec.kinds > qs.TICK_NORMAL, without.kinds > qs.TICK_NORMAL)

    if qs.pesq_available():
        a = qs.score(speech, with_fec.output, with_fec.t_out0_s)
        b = qs.score(speech, without.output, without.t_out0_s)
        assert a.pesq_wb > b.pesq_wb
    # PESQ or not: the blocks FEC rebuilt are closer to the input than the same blocks
    # concealed without FEC (an SNR over just those blocks).
    rebuilt = np.flatnonzero(with_fec.kinds == qs.TICK_FEC)
    lag_a, _ = qs.align(speech, with_fec.output)
    lag_b, _ = qs.align(speech, without.output)
    assert qs.blocks_snr_db(speech, with_fec, lag_a, rebuilt) > qs.blocks_snr_db(
        speech, without, lag_b, rebuilt
    )


@needs_opus
def test_adaptive_mode_turns_fec_on_from_simulated_rtcp(speech):
    run = qs.simulate(speech, OPUS_AUTO, qs.Condition(10))
    assert run.reports_to_sender >= 3
    # Read back from libopus: the encoder itself ended with FEC on and a loss hint.
    assert run.final["fec"] is True
    assert run.final["loss_pct"] > 0
    first_t, first_fec, *_ = run.decisions[0]
    assert first_t == 0.0 and first_fec is False  # fec auto starts off
    assert any(fec for _, fec, *_ in run.decisions[1:])


@needs_opus
def test_adaptive_mode_stays_without_fec_on_a_clean_path(speech):
    run = qs.simulate(speech, OPUS_AUTO, qs.Condition(0))
    assert run.reports_to_sender >= 3
    assert run.final["fec"] is False
    assert run.final["loss_pct"] == 0


def test_an_impossible_mode_is_refused(speech):
    with pytest.raises((ValueError, CodecError)):
        qs.simulate(speech, qs.Mode("bad", "Opus 7 ms", block_ms=7.0), qs.Condition(0))
