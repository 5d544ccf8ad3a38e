"""MediaSender and MediaReceiver wired back to back on a simulated clock."""

import numpy as np

from rtai import codecs
from rtai.adapt import Limits, PathAdapter
from rtai.audio.signals import speech
from rtai.codecs import EncoderSettings
from rtai.jitter import Playout
from rtai.media import MediaReceiver, MediaSender
from rtai.rtp.packet import parse_rtp

RATE = 48000
N = 480


def pair(codec="opus", **settings):
    info = codecs.get_codec(codec)
    base = EncoderSettings(**settings)
    adapter = PathAdapter(base, Limits(base.bitrate_bps, 12000, adaptive=False,
                                       fec="on" if base.fec else "off", redundancy=0))  # fmt: skip
    tx = MediaSender(info, RATE, 1, N, info.payload_type, 1234, adapter)
    rx = MediaReceiver(info, RATE, 1, N, info.payload_type, 1234, buffer_ms=20)
    return tx, rx


def blocks_of(signal):
    return [signal[i : i + N, None] for i in range(0, len(signal) - N + 1, N)]


def test_dtx_sends_nothing_in_silence_but_everything_in_speech():
    tx, _ = pair(dtx=True)
    silence = np.zeros((N, 1), np.float32)
    sent_silent = [tx.packetize(silence, 0.0) for _ in range(50)]
    # libopus keeps sending for ~200 ms into silence, then a refresh every 400 ms.
    assert sum(d is not None for d in sent_silent) < 15
    assert tx.counters.dtx_skipped > 35
    talk = blocks_of(speech(RATE, 1.0, 0))
    sent_talk = [tx.packetize(b, 0.0) for b in talk]
    assert sum(d is not None for d in sent_talk) > 0.7 * len(talk)
    # Timestamps keep counting through the silence: 50 silent blocks + talk.
    last = parse_rtp(next(d for d in reversed(sent_talk) if d is not None))
    first = parse_rtp(next(d for d in sent_silent if d is not None))
    assert (last.timestamp - first.timestamp) % (1 << 32) >= (len(talk) + 40) * N


def test_without_dtx_silence_is_sent():
    tx, _ = pair(dtx=False)
    silence = np.zeros((N, 1), np.float32)
    assert all(tx.packetize(silence, 0.0) is not None for _ in range(20))


def test_a_lost_packet_is_rebuilt_from_the_next_packets_fec_at_playout():
    tx, rx = pair(fec=True, loss_pct=20)
    talk = blocks_of(speech(RATE, 2.0, 0))
    t = 0.0
    kinds = []
    for k, b in enumerate(talk):
        data = tx.packetize(b, t)
        if data is not None and k % 10 != 5:  # lose one packet in ten
            rx.receive(data, t)
        if k >= 3:  # playout runs three blocks behind arrivals
            _, item = rx.playout(t)
            kinds.append(item.kind)
        t += N / RATE
    assert rx.counters.fec_recovered > 0.6 * kinds.count(Playout.CONCEAL)
