"""Third-party RTP reshaped into rtai blocks: L16 reblocking, Opus renumbering, SSRC lock."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from rtai.rtp.normalize import StreamNormalizer, pcm_block_from
from rtai.rtp.packet import RtpPacket, parse_rtp


def _l16(seq, ts, samples, ssrc=0xABC, pt=97, marker=False):
    payload = np.asarray(samples, dtype=">i2").tobytes()
    return RtpPacket(pt, seq & 0xFFFF, ts & 0xFFFFFFFF, ssrc, payload, marker).serialize()


def test_ffmpeg_sized_l16_packets_become_whole_blocks_in_order():
    n = StreamNormalizer("pcm", 97, 1, 128, 48000, 96)
    x = np.arange(3000, dtype=np.int16)
    out, pos, seq, ts0 = [], 0, 65530, 0xFFFFFF00  # both wrap on the way
    for size in (730, 730, 588, 730, 222):  # ffmpeg's sizes vary, the last is short
        out += n.push(_l16(seq, ts0 + pos, x[pos : pos + size], marker=True))
        pos, seq = pos + size, seq + 1
    got = pcm_block_from(out, 1)[:, 0]
    assert len(got) == (3000 // 128) * 128
    assert np.array_equal(got, x[: len(got)])
    seqs = [parse_rtp(d).sequence_number for d in out]
    assert seqs == list(range(len(out)))
    assert all(parse_rtp(d).ssrc == 1 and parse_rtp(d).payload_type == 96 for d in out)


def test_l16_gap_leaves_zeros_and_skips_whole_blocks():
    n = StreamNormalizer("pcm", 97, 1, 100, 48000, 96)
    out = n.push(_l16(1, 0, np.ones(150)))
    out += n.push(_l16(3, 450, np.full(200, 2)))  # 150..449 never arrives
    blocks = [parse_rtp(d) for d in out]
    assert [b.sequence_number for b in blocks] == [0, 1, 4, 5][: len(blocks)]
    second = np.frombuffer(blocks[1].payload, dtype=">i2")
    assert second[:50].tolist() == [1] * 50 and second[50:].tolist() == [0] * 50


def test_l16_overlap_and_late_packets_are_trimmed_or_dropped():
    n = StreamNormalizer("pcm", 97, 1, 100, 48000, 96)
    n.push(_l16(1, 0, np.arange(150)))
    assert n.push(_l16(0, 0, np.arange(100))) == [] and n.counters.late == 1
    out = n.push(_l16(2, 120, np.arange(120, 200)))  # 120..149 again, then new
    assert pcm_block_from(out, 1)[:, 0].tolist() == list(range(100, 200))


def test_first_source_is_locked_and_others_counted():
    n = StreamNormalizer("pcm", 97, 1, 100, 48000, 96)
    n.push(_l16(1, 0, np.zeros(10), ssrc=5))
    assert n.push(_l16(2, 10, np.zeros(100), ssrc=6)) == []
    assert n.counters.wrong_source == 1
    assert n.push(_l16(2, 10, np.zeros(10), ssrc=5, pt=0)) == []
    assert n.counters.wrong_payload == 1
    assert n.push(b"\x80garbage") == [] and n.counters.malformed == 1


def test_opus_timestamps_follow_sequence_numbers_not_the_sender():
    n = StreamNormalizer("opus", 111, 1, 960, 48000, 96, rate_hz=48000)
    ts = [1000, 1000 + 312, 1000 + 312 + 960]  # an odd first step
    out = []
    for i, t in enumerate(ts):
        out += n.push(RtpPacket(111, 65535 + i & 0xFFFF, t, 9, b"\xfc\x01", True).serialize())
    got = [parse_rtp(d) for d in out]
    assert [g.timestamp for g in got] == [0, 960, 1920]
    assert [g.sequence_number for g in got] == [65535, 0, 1]
    assert not any(g.marker for g in got)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=80), max_size=20), st.sampled_from(["pcm", "opus"]))
def test_garbage_never_raises(datagrams, codec):
    n = StreamNormalizer(codec, 97, 2, 64, 48000, 96)
    for d in datagrams:
        for out in n.push(b"\x80\x61" + d):
            assert parse_rtp(out).payload_type == 96
