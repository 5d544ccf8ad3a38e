"""Capture processing's pure parts: voice gate, talk control, pipeline plumbing."""

from __future__ import annotations

import argparse

import numpy as np

from rtai.processing import CapturePipeline, ProcessingOptions, TalkControl, VoiceGate
from rtai.talk import KeyReader, add_arguments, device_input, options_from_args

RATE = 48000


class GainEngine:
    """A stand-in engine for plumbing tests: halves the frame, reports a fixed probability."""

    name = "fake"

    def __init__(self, frame_frames: int, probability: float = 0.0) -> None:
        self.frame_frames = frame_frames
        self.speech_probability = probability
        self.frames: list[tuple[np.ndarray, np.ndarray]] = []

    def process(self, near, far):
        self.frames.append((near.copy(), far.copy()))
        return near * 0.5


def test_gate_opens_on_an_energy_onset_at_once_and_holds_for_the_hangover():
    g = VoiceGate(0.01, hangover_s=0.1)
    for _ in range(50):
        assert not g.update(0.0, -60.0)  # background
    assert g.update(0.0, -30.0)  # a word starts: 30 dB over the floor, no VAD yet
    open_after = sum(g.update(0.0, -60.0) for _ in range(30))
    assert open_after == 10  # 100 ms of hangover, then closed


def test_gate_follows_the_speech_probability_at_a_steady_level():
    g = VoiceGate(0.01, hangover_s=0.05)
    for _ in range(600):
        g.update(0.0, -40.0)  # a louder steady noise: the floor climbs to it in 5 s
    assert not g.update(0.1, -40.0)
    assert g.update(0.9, -40.0)


def test_gate_never_opens_below_the_quiet_level():
    g = VoiceGate(0.01, quiet_dbfs=-65.0)
    assert not any(g.update(1.0, -80.0) for _ in range(20))


class FakeClock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def test_talk_control_mute_and_latch():
    t = TalkControl(ptt=True, clock=FakeClock())
    assert not t.open and t.state() == "ptt"
    t.toggle_talk()
    assert t.open and t.state() == "locked"
    t.toggle_mute()
    assert not t.open and t.state() == "muted"
    t.toggle_mute()
    t.toggle_talk()
    assert not t.open and t.state() == "ptt"
    free = TalkControl()
    assert free.open and free.state() == "open"


def _hold(t: TalkControl, clock: FakeClock, first_s: float, every_s: float, until_s: float):
    """Hold the key like a terminal: a press, the auto-repeat delay, then repeats."""
    start = last = clock.t
    t.press_talk()
    seen = []
    next_press = start + first_s
    while clock.t < start + until_s:
        clock.t = round(clock.t + 0.01, 6)
        if clock.t >= next_press:
            t.press_talk()
            last = clock.t
            next_press += every_s
        seen.append(t.open)
    return seen, last


def test_a_held_key_talks_for_as_long_as_it_repeats_for_common_terminal_timings():
    for delay_s, every_s in [(0.25, 0.03), (0.5, 0.04), (0.66, 0.04), (0.6, 0.05)]:
        clock = FakeClock()
        t = TalkControl(ptt=True, clock=clock)
        seen, last = _hold(t, clock, delay_s, every_s, 2.0)
        assert all(seen), (delay_s, every_s)
        assert t.state() == "talk"
        clock.t = last + 0.19  # released after the last repeat
        assert t.open
        clock.t += 0.02  # no repeat for longer than the repeat gap
        assert not t.open and t.state() == "ptt"


def test_one_tap_talks_until_the_first_gap_has_passed():
    clock = FakeClock()
    t = TalkControl(ptt=True, clock=clock)
    t.press_talk()
    assert t.open  # at once: the first syllable is not lost
    clock.t += 0.74
    assert t.open
    clock.t += 0.02
    assert not t.open
    t.press_talk()  # a new hold starts from scratch, with the long first gap again
    clock.t += 0.5
    assert t.open


def test_holding_the_key_releases_a_latch_and_mute_wins_over_a_hold():
    clock = FakeClock()
    t = TalkControl(ptt=True, clock=clock)
    t.toggle_talk()
    t.press_talk()
    assert t.state() == "talk" and not t.latched
    clock.t += 1.0
    assert not t.open
    t.press_talk()
    t.toggle_mute()
    assert not t.open and t.state() == "muted"
    t.toggle_talk()  # the latch also ends any hold
    t.toggle_talk()
    t.toggle_mute()
    assert t.state() == "ptt" and not t.open


def test_keys_mute_hold_and_latch_and_no_terminal_means_no_reader(tmp_path):
    clock = FakeClock()
    t = TalkControl(ptt=True, clock=clock)
    k = KeyReader(t)
    k.handle("m")
    assert t.muted
    k.handle("m")
    k.handle(" ")
    assert t.open and t.state() == "talk"
    k.handle("x")  # other keys do nothing
    assert t.open
    clock.t += 1.0
    assert not t.open
    k.handle("t")
    clock.t += 10.0
    assert t.open and t.state() == "locked"
    k.handle("T")
    assert not t.open
    with open(tmp_path / "f", "w+") as f:  # not a terminal
        assert KeyReader(t, f).start() is False


def test_pipeline_without_processing_passes_blocks_through_untouched():
    p = CapturePipeline(RATE, 1, 128, ProcessingOptions())
    x = np.ones((128, 1), dtype=np.float32)
    r = p.process(x, 0, 1.0)
    assert r.send and r.block is x and r.capture_s == 1.0
    assert p.engine is None and p.stats()["processing"] == "off"


def test_pipeline_reframes_feeds_the_aligned_reference_and_dates_the_block_back():
    n = 128
    eng = GainEngine(480)
    p = CapturePipeline(RATE, 1, n, ProcessingOptions(aec=True), engine=eng)
    assert p.delay_s == (480 - 32) / RATE
    x = np.arange(40 * n, dtype=np.float32)
    for k in range(30):
        adc = k * n / RATE
        p.played(x[(k + 3) * n : (k + 4) * n, None], (k + 3) * n / RATE, adc)
        r = p.process(x[k * n : (k + 1) * n, None], k, adc)
        assert r.send and r.capture_s == adc - p.delay_s
    assert len(eng.frames) == 30 * n // 480
    lead = p.reference.lead_frames
    near, far = eng.frames[-1]
    assert np.array_equal(far[:, 0], near[:, 0] + lead)  # far leads near by the lead


def test_silence_and_mute_hold_blocks_back_and_are_counted():
    n = 480
    talk = TalkControl()
    p = CapturePipeline(RATE, 1, n, ProcessingOptions(vad=True), talk, GainEngine(480))
    quiet = np.zeros((n, 1), dtype=np.float32)
    loud = np.full((n, 1), 0.3, dtype=np.float32)
    results = [p.process(quiet, k, 0.0) for k in range(20)]
    assert not any(r.send for r in results) and results[0].reason == "silence"
    assert p.process(loud, 20, 0.0).send
    talk.toggle_mute()
    r = p.process(loud, 21, 0.0)
    assert not r.send and r.reason == "muted"
    s = p.stats()
    assert s["vad_silent"] == 20 and s["talk_held"] == 1 and s["talk"] == "muted"


def test_processing_defaults_follow_the_input_kind():
    parser = argparse.ArgumentParser()
    parser.add_argument("--input")
    add_arguments(parser)
    dev = options_from_args(parser.parse_args([]))
    assert dev.aec and dev.ns and dev.agc and dev.vad and not dev.ptt
    sig = options_from_args(parser.parse_args(["--input", "speech"]))
    assert not (sig.aec or sig.ns or sig.agc or sig.vad)
    mixed = options_from_args(parser.parse_args(["--input", "x.wav", "--aec", "--ptt"]))
    assert mixed.aec and not mixed.ns and mixed.ptt
    off = options_from_args(parser.parse_args(["--no-aec", "--no-vad"]))
    assert not off.aec and off.ns and not off.vad
    assert device_input("2") and device_input("rigA") and not device_input("tone:440")


def test_held_blocks_move_the_rtp_timestamp_on_and_mark_the_next_talkspurt():
    from rtai import codecs
    from rtai.adapt import Limits, PathAdapter
    from rtai.codecs import EncoderSettings
    from rtai.media import MediaSender
    from rtai.rtp.packet import parse_rtp

    info = codecs.get_codec("pcm")
    base = EncoderSettings()
    adapter = PathAdapter(base, Limits(base.bitrate_bps, 12000, adaptive=False, redundancy=0))
    tx = MediaSender(info, RATE, 1, 128, info.payload_type, 1, adapter)
    block = np.zeros((128, 1), dtype=np.float32)
    first = parse_rtp(tx.packetize(block, None))
    second = parse_rtp(tx.packetize(block, None))
    for _ in range(5):
        tx.silence()
    third = parse_rtp(tx.packetize(block, None))
    assert first.marker and not second.marker and third.marker
    assert (third.timestamp - second.timestamp) % 2**32 == 6 * 128
    assert (third.sequence_number - second.sequence_number) % 2**16 == 1
    assert tx.counters.dtx_skipped == 5 and tx.counters.sent == 3
