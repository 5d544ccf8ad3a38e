"""rtai send -> rtai receive over loopback UDP, no handshake; a stranger's packets too."""

from __future__ import annotations

import socket
import struct
import time

import numpy as np
import pytest

from rtai.audio.clocked import ClockedEndpoint
from rtai.audio.files import ArraySink
from rtai.audio.signals import ArraySource, make_signal, speech
from rtai.dsp.align import aligned_correlation
from rtai.rtp.packet import RtpPacket
from rtai.stream import StreamParams, StreamReceiver, StreamSender

RATE = 48000


def _udp(port: int = 0) -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", port))
    return s


def _pair() -> tuple[socket.socket, socket.socket]:
    for _ in range(50):
        a = _udp()
        p = a.getsockname()[1]
        try:
            return a, _udp(p + 1)
        except OSError:
            a.close()
    raise RuntimeError("no free port pair")


@pytest.mark.parametrize("codec, frame", [("pcm", 128), ("opus", 480)])
def test_send_to_receive_with_a_stranger_and_a_bye(codec, frame):
    x = speech(RATE, 2.0, 0)
    rtp_sock, rtcp_sock = _pair()
    port = rtp_sock.getsockname()[1]
    sink = ArraySink(RATE, 1)
    params = StreamParams(codec, RATE, 1, frame, 96 if codec == "pcm" else 111)

    def out_endpoint(block: int):
        return ClockedEndpoint(make_signal("silence", RATE, 1), sink, RATE, 1, block)

    rx = StreamReceiver(params, out_endpoint, rtp_sock, rtcp_sock, buffer_ms=40.0, idle_s=5.0)
    rx.start()
    sender_ep = ClockedEndpoint(ArraySource(x, RATE), ArraySink(RATE, 1), RATE, 1, frame)
    tx = StreamSender(params, sender_ep, _udp(), ("127.0.0.1", port))
    stranger = _udp()
    try:
        tx.start()
        time.sleep(0.3)
        for i in range(20):  # another source, same payload type: must be ignored
            junk = RtpPacket(params.payload_type, i, i * frame, 0x5EED, bytes(frame * 2))
            stranger.sendto(junk.serialize(), ("127.0.0.1", port))
        stranger.sendto(b"\x80\x60garbage", ("127.0.0.1", port))
        assert tx.done.wait(10), "the sender did not finish its input"
        tx.stop()  # sends the RTCP BYE to port + 1
        assert rx.done.wait(5), "the receiver did not end on the BYE"
        assert "BYE" in rx.reason
    finally:
        rx.stop()
        stranger.close()
    assert rx.normalizer.counters.wrong_source == 20
    assert rx.normalizer.counters.malformed + rx.early_dropped >= 1
    lag, corr = aligned_correlation(x, sink.data()[:, 0])
    assert corr >= (0.99 if codec == "pcm" else 0.95), (lag, corr)


def test_rtcp_sender_reports_reach_port_plus_one():
    rtp_sock, rtcp_sock = _pair()
    port = rtp_sock.getsockname()[1]
    params = StreamParams("pcm", RATE, 1, 128, 96)
    ep = ClockedEndpoint(make_signal("tone:440", RATE, 1, 1.5), ArraySink(RATE, 1), RATE, 1, 128)
    tx = StreamSender(params, ep, _udp(), ("127.0.0.1", port), seconds=1.5)
    rtcp_sock.settimeout(3.0)
    try:
        tx.start()
        data, _ = rtcp_sock.recvfrom(2048)
    finally:
        tx.stop()
        rtp_sock.close()
        rtcp_sock.close()
    version_pt = struct.unpack("!BB", data[:2])
    assert version_pt[0] >> 6 == 2 and version_pt[1] == 200  # a sender report
    assert np.frombuffer(data[4:8], dtype=">u4")[0] == tx.ssrc
