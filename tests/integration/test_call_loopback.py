"""Two real peers over loopback UDP, with files and generated signals as sound cards."""

from __future__ import annotations

import socket
import time

import numpy as np
import pytest

from rtai.audio.signals import speech
from rtai.config import PeerConfig
from rtai.dsp.align import find_lag, overlap
from rtai.handshake import Accept, decode_message, is_handshake
from rtai.netsim.model import ImpairmentConfig
from rtai.netsim.relay import Relay
from rtai.pairing import Pairing
from rtai.rtp.packet import RtpPacket, looks_like_rtp, parse_rtp
from rtai.rtp.rtcp import is_rtcp

RATE = 48000


def quantize16(x: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(x * 32768.0), -32768, 32767).astype(np.int32)


def test_both_directions_arrive_sample_exact_when_nothing_is_lost(start_pair):
    a = speech(RATE, 2.5, 0)
    b = speech(RATE, 2.0, 1)
    pair = start_pair(a, b)
    pair.wait(15)
    heard_by_listener = pair.listener_sink.data()[:, 0]
    heard_by_caller = pair.caller_sink.data()[:, 0]
    summary_l = pair.listener.finished_calls[-1]
    summary_c = pair.caller.finished_calls[-1]
    for summary in (summary_l, summary_c):
        assert summary["lost"] == 0 and summary["concealed"] == 0, summary
        # The buffer's own figures are reported with the call's (this pair's buffer is
        # fixed: it never time-scales).
        assert summary["buffer_mode"] == "fixed" and summary["buffer_target_ms"] is not None
        assert summary["stretch"] == summary["early_stretch"] == summary["accelerate"] == 0
    # Caller -> listener: the whole of b, bit for bit after 16-bit quantization.
    lag = find_lag(b, heard_by_listener)
    ref, got = overlap(b, heard_by_listener, lag)
    assert ref.size == b.size
    assert np.array_equal(quantize16(ref), quantize16(got))
    # Listener -> caller: a contiguous stretch of a (the listener talked before the call).
    lag = find_lag(a, heard_by_caller)
    ref, got = overlap(a, heard_by_caller, lag)
    # The caller's card ran on a little after the call ended: keep the call's span.
    nz = np.flatnonzero(quantize16(got))
    ref, got = ref[nz[0] : nz[-1] + 1], got[nz[0] : nz[-1] + 1]
    assert ref.size > RATE  # at least a second of overlap
    assert np.array_equal(quantize16(ref), quantize16(got))


def test_stereo_caller_and_mono_listener_reconcile_to_mono(start_pair):
    b = np.stack([speech(RATE, 1.5, 1), np.zeros(int(1.5 * RATE), np.float32)], axis=1)
    pair = start_pair(
        speech(RATE, 2.0, 0),
        b,
        cfg_l=PeerConfig(channels=1, buffer_ms=40),
        cfg_c=PeerConfig(channels=2, buffer_ms=40),
    )
    pair.wait(15)
    assert pair.caller.finished_calls[-1]["call"] == 1
    heard = pair.listener_sink.data()[:, 0]
    mono = b.mean(axis=1)
    lag = find_lag(mono, heard)
    ref, got = overlap(mono, heard, lag)
    assert np.max(np.abs(ref - got)) < 2 / 32768
    # The caller plays the mono call on both of its channels.
    heard_c = pair.caller_sink.data()
    assert heard_c.shape[1] == 2
    assert np.array_equal(heard_c[:, 0], heard_c[:, 1])


def test_rate_mismatch_is_refused_with_a_message_on_both_sides(start_pair):
    pair = start_pair(
        speech(RATE, 1.0, 0),
        speech(RATE, 1.0, 1),
        cfg_l=PeerConfig(rate_hz=48000),
        cfg_c=PeerConfig(rate_hz=44100),
    )
    assert pair.caller.done.wait(5)
    caller_events = pair.caller.events()
    listener_events = pair.listener.events()
    assert pair.caller.exit_status == 2
    assert any("sample rate mismatch" in t and "--rate" in t for _, t in caller_events)
    assert any("sample rate mismatch" in t for _, t in listener_events)
    assert pair.listener.call is None


def test_listener_takes_the_next_caller_after_the_first_leaves(start_pair):
    pair1 = start_pair(speech(RATE, 6.0, 0), speech(RATE, 1.0, 1))
    pair1.caller.done.wait(10)
    pair1.caller.stop()
    # A second caller to the same listener socket.
    from rtai.session import Peer
    from tests.integration.conftest import clocked, make_udp

    ep, sink = clocked(speech(RATE, 1.0, 1), PeerConfig(buffer_ms=40))
    # Codes are one-time: the second caller is given the listener's new code.
    new_code = pair1.listener.pairing.code
    caller2 = Peer(
        PeerConfig(buffer_ms=40), ep, make_udp(), pair1.listener_sock.getsockname(),
        pairing=Pairing.from_code(new_code),
    )  # fmt: skip
    caller2.start()
    try:
        assert caller2.done.wait(10)
        assert caller2.exit_status == 0
        assert _wait_for(lambda: len(pair1.listener.finished_calls) == 2, 2)
        assert [c["call"] for c in pair1.listener.finished_calls] == [1, 2]
        assert pair1.listener.finished_calls[1]["received"] > 300
    finally:
        caller2.stop()


def test_a_second_caller_during_a_call_is_told_the_listener_is_busy(start_pair):
    pair = start_pair(speech(RATE, 4.0, 0), speech(RATE, 3.0, 1))
    from rtai.session import Peer
    from tests.integration.conftest import clocked, make_udp

    assert _wait_for(lambda: pair.listener.call is not None, 3)
    ep, _ = clocked(speech(RATE, 1.0, 1), PeerConfig(buffer_ms=40))
    intruder = Peer(PeerConfig(buffer_ms=40), ep, make_udp(), pair.listener_sock.getsockname())
    intruder.start()
    try:
        assert intruder.done.wait(5)
        assert intruder.exit_status == 2
        assert any("busy" in t for _, t in intruder.events())
    finally:
        intruder.stop()
    pair.wait(15)
    assert pair.listener.finished_calls[-1]["concealed"] == 0


def test_calling_nobody_times_out_with_a_message(start_pair):
    from rtai.session import Peer
    from tests.integration.conftest import clocked, make_udp

    dead = make_udp()  # bound, never answers
    ep, _ = clocked(speech(RATE, 1.0, 1), PeerConfig())
    caller = Peer(PeerConfig(), ep, make_udp(), dead.getsockname())
    caller.start()
    try:
        assert caller.done.wait(10)
        assert caller.exit_status == 1
        assert any("no answer" in t for lvl, t in caller.events() if lvl == "error")
    finally:
        caller.stop()
        dead.close()


def test_ipv6_loopback_call(start_pair):
    if not socket.has_ipv6:
        pytest.skip("no IPv6")
    try:
        s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        s.bind(("::1", 0))
        s.close()
    except OSError:
        pytest.skip("::1 not available")
    pair = start_pair(speech(RATE, 1.5, 0), speech(RATE, 1.0, 1), host="::1")
    pair.wait(10)
    assert pair.listener.finished_calls[-1]["received"] > 300


def test_counts_match_what_netsim_did(start_pair):
    delivered: dict[str, list[int]] = {"forward": [], "reverse": []}

    accepted = []

    def tap(direction: str, data: bytes) -> None:
        if is_handshake(data) and isinstance(decode_message(data), Accept):
            accepted.append(True)
        # Media that overtakes the ACCEPT reaches a caller with no call yet: not counted.
        if looks_like_rtp(data) and not is_rtcp(data) and accepted:
            delivered[direction].append(parse_rtp(data).sequence_number)

    impair = ImpairmentConfig(
        delay_ms=5, jitter_ms=1, loss_pct=5, reorder_pct=3, duplicate_pct=3, seed=7
    )
    relays, via = netsim_between(impair, tap)

    cfg = PeerConfig(buffer_ms=60, redundancy=0)  # plain packets: counts stay exact
    # Plain RTP: with encryption media can overtake the CONFIRM and go uncounted.
    pair = start_pair(speech(RATE, 8.0, 0), speech(RATE, 8.0, 1), cfg, cfg, via=via, insecure=True)
    time.sleep(3.0)
    # Cut the link mid-call so that what netsim delivered is final, let the peers take
    # in everything in flight, then read their counters while the call is still up.
    relays[0].stop()
    time.sleep(0.5)
    snaps = {"forward": pair.listener.snapshot(), "reverse": pair.caller.snapshot()}
    max_tail = pair.listener.call.receiver.jitter.max_conceal_blocks
    pair.stop()
    stats = relays[0].stats()
    assert stats.forward.dropped_loss > 0 and stats.forward.duplicated > 0
    assert stats.forward.reordered > 0
    for direction, s in snaps.items():
        seqs = delivered[direction]
        unique = set(seqs)
        assert s["call"] == 1
        assert s["received"] == len(seqs)
        # Every extra copy netsim made is dropped as a duplicate or as late.
        assert s["duplicates"] + s["late"] == len(seqs) - len(unique)
        ext = np.unwrap(np.array(sorted(unique)), period=65536)
        expected = int(ext.max() - ext.min() + 1)
        assert s["lost"] == max(0, expected - len(seqs))
        missing = expected - len(unique)
        assert missing > 0
        # Every sequence number never delivered, or delivered after its playout time,
        # was concealed (a packet just too late is then played a block later:
        # reanchored); after the link was cut the buffer concealed at most
        # max_conceal_blocks more before it stopped to wait for the stream.
        late_slots = s["late"] + s["reanchored"]
        assert missing <= s["concealed"] <= missing + late_slots + max_tail


def netsim_between(impair: ImpairmentConfig, tap=None):
    """A ``via`` for ``start_pair`` that puts a netsim relay in front of the listener;
    the relays started go into the returned list (stop them when done)."""
    relays: list[Relay] = []

    def via(addr):
        relay = Relay(("127.0.0.1", 0), addr, impair, tap=tap)
        relay.start()
        relays.append(relay)
        return relay.listen_address

    return relays, via


def _wait_for(pred, timeout_s: float) -> bool:
    import time

    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(0.02)
    return False


def test_hostile_packets_are_dropped_and_counted_and_the_call_goes_on(start_pair):
    # Plain RTP (--insecure): encrypted calls refuse all of these earlier, see
    # tests/integration/test_secure_call.py.
    pair = start_pair(speech(RATE, 4.0, 0), speech(RATE, 3.0, 1), insecure=True)
    assert _wait_for(lambda: pair.listener.call is not None and pair.caller.call is not None, 3)
    call = pair.listener.call
    target = pair.listener_sock.getsockname()
    ssrc, pt = call.remote_ssrc, call.accept.payload_type
    good_len = call.accept.block_frames * 2

    def rtp(**kw) -> bytes:
        fields = dict(payload_type=pt, sequence_number=1, timestamp=0, ssrc=ssrc,
                      payload=bytes(good_len))  # fmt: skip
        fields.update(kw)
        return RtpPacket(**fields).serialize()

    # Sent from the caller's own address and port, so only the content is wrong.
    from_caller = pair.caller.sock
    hostile = {
        "malformed": [b"\x80", b"\x80\x60" + b"\x00" * 5, b"\x00garbage", b"RTAI\x01\x09{}",
                      b"\x40" + bytes(20), b"\xb0" + bytes(15)],
        "wrong_source": [rtp(ssrc=ssrc ^ 1)] * 3,
        "unknown_payload": [rtp(payload_type=(pt + 1) % 128)] * 4,
    }  # fmt: skip
    for packets in hostile.values():
        for p in packets:
            from_caller.sendto(p, target)
    # A stranger on another port is foreign whatever it sends, and not even parsed.
    stranger = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    stranger.bind(("127.0.0.1", 0))
    for _ in range(5):
        stranger.sendto(rtp(), target)
    stranger.sendto(b"\x80" * 20000, target)  # oversized
    stranger.close()
    time.sleep(0.3)
    snap = pair.listener.snapshot()
    assert snap["malformed"] == len(hostile["malformed"]) + 1  # + the oversized one
    assert snap["wrong_source"] == len(hostile["wrong_source"])
    assert snap["foreign"] == 5
    assert snap["unknown_payload"] == len(hostile["unknown_payload"])
    pair.wait(15)
    assert pair.listener.finished_calls[-1]["ended"] == "the other side hung up"


def test_truncated_payload_is_concealed_not_played(start_pair):
    pair = start_pair(speech(RATE, 3.0, 0), speech(RATE, 2.0, 1), insecure=True)
    assert _wait_for(lambda: pair.listener.call is not None and pair.caller.call is not None, 3)
    call = pair.listener.call
    # A packet far ahead in sequence with a short payload: it reaches playout and the
    # decoder refuses it.
    seq = (pair.caller.call.sender.seq + 20) & 0xFFFF
    bad = RtpPacket(call.accept.payload_type, seq, 0, call.remote_ssrc, b"\x01\x02\x03")
    pair.caller.sock.sendto(bad.serialize(), pair.listener_sock.getsockname())
    pair.wait(15)
    assert pair.listener.finished_calls[-1]["decode_errors"] == 1


def test_redundancy_fills_most_gaps_left_by_random_loss(start_pair):
    impair = ImpairmentConfig(delay_ms=5, loss_pct=10, seed=11)
    relays, via = netsim_between(impair)

    cfg = PeerConfig(buffer_ms=40, redundancy=2)
    pair = start_pair(speech(RATE, 4.0, 0), speech(RATE, 3.0, 1), cfg, cfg, via=via)
    try:
        pair.wait(20)
    finally:
        for r in relays:
            r.stop()
    s = pair.listener.finished_calls[-1]
    assert s["lost"] > 50 and s["redundancy"] == 2
    assert s["redundant_used"] > 0.8 * s["lost"]
    # Only runs of three or more losses in a row remain to conceal: ~0.1 % of blocks.
    assert s["concealed"] < 0.15 * s["lost"]


def test_rtcp_reports_of_loss_turn_on_opus_fec_and_the_loss_hint(start_pair):
    impair = ImpairmentConfig(delay_ms=5, loss_pct=10, seed=5)
    relays, via = netsim_between(impair)

    cfg = PeerConfig(block_frames=480, codecs=("opus",), buffer_ms=40)
    pair = start_pair(speech(RATE, 8.0, 0), speech(RATE, 6.0, 1), cfg, cfg, via=via)
    try:
        first = None
        assert _wait_for(lambda: pair.caller.call is not None, 3)
        first = pair.caller.snapshot()
        assert first["fec"] is False and first["loss_hint_pct"] == 0
        assert _wait_for(lambda: pair.caller.call.adapter.decision.settings.fec, 6)
        assert _wait_for(lambda: pair.caller.call.adapter.decision.settings.loss_pct >= 5, 6)
        later = pair.caller.snapshot()
        assert later["fec"] is True and later["loss_hint_pct"] >= 5
        # The encoder itself was reconfigured, not only the plan.
        time.sleep(0.1)
        assert pair.caller.call.sender.encoder.fec is True
        pair.wait(20)
    finally:
        for r in relays:
            r.stop()
    s = pair.listener.finished_calls[-1]
    assert s["codec"] == "opus" and s["fec_recovered"] > 0


def test_an_answer_with_a_codec_not_offered_ends_the_call_attempt_with_a_message(start_pair):
    from rtai.handshake import Hello, encode_message
    from rtai.session import Peer
    from tests.integration.conftest import clocked, make_udp

    fake = make_udp()  # answers the first HELLO with a codec the caller never offered
    fake.settimeout(5.0)
    ep, _ = clocked(speech(RATE, 1.0, 1), PeerConfig())
    caller = Peer(PeerConfig(), ep, make_udp(), fake.getsockname())  # offers pcm only
    caller.start()
    try:
        data, addr = fake.recvfrom(4096)
        hello = decode_message(data)
        assert isinstance(hello, Hello) and hello.codecs == ("pcm",)
        answer = Accept(session=hello.session, rate_hz=hello.rate_hz, channels=1,
                        block_frames=hello.block_frames, codec="lossless/1", payload_type=100,
                        ssrc=5, clock_id="boot:x")  # fmt: skip
        fake.sendto(encode_message(answer), addr)
        assert caller.done.wait(10)
        assert caller.exit_status == 2
        errors = [t for lvl, t in caller.events() if lvl == "error"]
        assert any("'lossless/1'" in t and "did not offer" in t for t in errors), errors
        assert caller.call is None
    finally:
        caller.stop()
        fake.close()


@pytest.mark.parametrize("older_offer", [("lossless", "pcm"), ("lossless",)])
def test_a_listener_does_not_take_lossless_from_a_build_on_another_payload_version(older_offer):
    """An rtai whose lossless payloads are of another version offers plain "lossless"
    (or "lossless/N"); this build offers "lossless/<its version>", so the two never code
    lossless at each other: the next common codec is used, or the call is refused."""
    from rtai.codecs import get_codec
    from rtai.handshake import Hello, Reject, encode_message
    from rtai.session import Peer
    from tests.integration.conftest import clocked, make_udp

    wire = get_codec("lossless").wire_name
    assert wire != "lossless" and wire.startswith("lossless/")
    cfg = PeerConfig(codecs=("lossless", "pcm"))
    ep, _ = clocked(speech(RATE, 1.0, 1), cfg)
    listener_sock = make_udp()
    listener = Peer(cfg, ep, listener_sock, None, name="listener")
    old = make_udp()  # plays the older build's caller
    old.settimeout(5.0)
    listener.start()
    try:
        hello = Hello(session="0123456789abcdef", rate_hz=cfg.rate_hz, channels=1,
                      block_frames=cfg.block_frames, codecs=older_offer, ssrc=9,
                      clock_id="boot:old")  # fmt: skip
        old.sendto(encode_message(hello), listener_sock.getsockname())
        answer = decode_message(old.recvfrom(4096)[0])
        if "pcm" in older_offer:
            assert isinstance(answer, Accept) and answer.codec == "pcm"
        else:
            assert isinstance(answer, Reject)
            assert "no common codec" in answer.reason and wire in answer.reason
    finally:
        listener.stop()
        old.close()
