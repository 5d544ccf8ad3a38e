"""Encrypted calls over real loopback UDP: pairing, tampering, capture, flood.

A small relay (real sockets, one thread) sits between caller and listener where a
test needs to see or touch the packets: it records everything it forwards and can
inject extra datagrams (bit-flipped, truncated, replayed, old, forged) next to the
genuine ones, from the address the listener knows as its caller.
"""

from __future__ import annotations

import os
import select
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from rtai.audio.signals import speech
from rtai.config import PeerConfig
from rtai.dsp.align import find_lag, overlap
from rtai.pairing import Pairing
from rtai.rtp.packet import RtpPacket, looks_like_rtp
from rtai.rtp.rtcp import is_rtcp
from rtai.rtp.srtp import rtp_header_length
from tests.integration.conftest import clocked, make_udp

RATE = 48000


def quantize16(x: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(x * 32768.0), -32768, 32767).astype(np.int32)


class TapRelay:
    """Forwards datagrams between one client and ``target`` and records them; with
    ``inject``, each client datagram is replaced by the list ``inject(datagram)``
    returns (the genuine one among hostile ones, in the order to send)."""

    def __init__(self, target: tuple, inject=None) -> None:
        self.target = target
        self.inject = inject
        self.front = make_udp()
        self.back = make_udp()
        self.client: tuple | None = None
        self.forward: list[bytes] = []
        self.reverse: list[bytes] = []
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)

    @property
    def address(self) -> tuple:
        return self.front.getsockname()

    def start(self) -> TapRelay:
        self._t.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._t.join(2)
        self.front.close()
        self.back.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            ready, _, _ = select.select([self.front, self.back], [], [], 0.05)
            for s in ready:
                try:
                    data, addr = s.recvfrom(65536)
                except OSError:
                    continue
                if s is self.front:
                    self.client = addr
                    self.forward.append(data)
                    for d in self.inject(data) if self.inject else [data]:
                        self.back.sendto(d, self.target)
                elif self.client is not None:
                    self.reverse.append(data)
                    self.front.sendto(data, self.client)


def secure_pair(
    listener_signal, caller_signal, cfg=None, caller_code=None, via=None, insecure=False
):
    """A listener issuing codes and a caller given ``caller_code`` (default: the right
    one), optionally through a relay made by ``via(listener_address)``; plain RTP on
    both sides with ``insecure``."""
    from rtai.session import Peer

    cfg = cfg or PeerConfig(buffer_ms=40)
    ep_l, sink_l = clocked(listener_signal, cfg)
    ep_c, sink_c = clocked(caller_signal, cfg)
    ls = make_udp()
    lp = None if insecure else Pairing.issue_codes()
    listener = Peer(cfg, ep_l, ls, None, name="listener", pairing=lp)
    target = via(ls.getsockname()) if via else ls.getsockname()
    cp = None if insecure else Pairing.from_code(caller_code or lp.code)
    caller = Peer(cfg, ep_c, make_udp(), target, name="caller", pairing=cp)
    listener.start()
    caller.start()
    return listener, caller, sink_l, sink_c


def stop(*peers) -> None:
    for p in peers:
        p.stop()


def test_right_code_gives_an_encrypted_sample_exact_call():
    b = speech(RATE, 2.0, 1)
    listener, caller, sink_l, _ = secure_pair(speech(RATE, 2.5, 0), b)
    try:
        assert caller.done.wait(15)
    finally:
        stop(caller, listener)
    s = listener.finished_calls[-1]
    assert s["encrypted"] and s["concealed"] == 0 and s["auth_failed"] == 0
    heard = sink_l.data()[:, 0]
    lag = find_lag(b, heard)
    ref, got = overlap(b, heard, lag)
    assert ref.size == b.size and np.array_equal(quantize16(ref), quantize16(got))


def test_wrong_code_fails_on_both_sides_and_no_audio_flows():
    listener, caller, sink_l, sink_c = secure_pair(
        speech(RATE, 3.0, 0), speech(RATE, 3.0, 1), caller_code="1-acorn-acorn"
    )
    if listener.pairing.code == "1-acorn-acorn":  # one chance in ~8 million
        pytest.skip("the random code happened to be the wrong one")
    try:
        assert caller.done.wait(10)
        assert caller.exit_status == 2
        time.sleep(0.3)
        errors = [t for lvl, t in caller.events() if lvl == "error"]
        assert any(t.startswith("wrong code") for t in errors), errors
        events = listener.events()
        assert any("gave a wrong code (1 of 3" in t for _, t in events), events
        assert listener.call is None and listener.calls == 0
        assert listener.snapshot()["wrong_codes"] == 1
    finally:
        stop(caller, listener)
    assert not np.any(sink_l.data())  # the listener played nothing but silence
    assert caller.calls == 0


def test_three_wrong_codes_make_the_listener_issue_a_new_one():
    from rtai.session import Peer

    cfg = PeerConfig(buffer_ms=40)
    ep_l, _ = clocked(speech(RATE, 3.0, 0), cfg)
    ls = make_udp()
    lp = Pairing.issue_codes()
    first = lp.code
    listener = Peer(cfg, ep_l, ls, None, name="listener", pairing=lp)
    listener.start()
    try:
        wrong = "1-acorn-acorn" if first != "1-acorn-acorn" else "2-acorn-acorn"
        for _ in range(3):
            ep_c, _ = clocked(speech(RATE, 1.0, 1), cfg)
            c = Peer(cfg, ep_c, make_udp(), ls.getsockname(), pairing=Pairing.from_code(wrong))
            c.start()
            assert c.done.wait(10) and c.exit_status == 2
            c.stop()
        time.sleep(0.2)
        texts = [t for _, t in listener.events()]
        assert lp.code != first
        assert any(f"the code is now {lp.code}" in t for t in texts), texts
        # The new code works.
        ep_c, _ = clocked(speech(RATE, 1.0, 1), cfg)
        c = Peer(cfg, ep_c, make_udp(), ls.getsockname(), pairing=Pairing.from_code(lp.code))
        c.start()
        assert c.done.wait(10) and c.exit_status == 0
        c.stop()
    finally:
        listener.stop()


@pytest.mark.parametrize("insecure_side", ["caller", "listener"])
def test_insecure_on_one_side_only_is_refused_with_a_message(insecure_side):
    from rtai.session import Peer

    cfg = PeerConfig(buffer_ms=40)
    ep_l, _ = clocked(speech(RATE, 2.0, 0), cfg)
    ep_c, _ = clocked(speech(RATE, 1.0, 1), cfg)
    ls = make_udp()
    lp = None if insecure_side == "listener" else Pairing.issue_codes()
    cp = None if insecure_side == "caller" else Pairing.from_passphrase("whatever")
    listener = Peer(cfg, ep_l, ls, None, name="listener", pairing=lp)
    caller = Peer(cfg, ep_c, make_udp(), ls.getsockname(), name="caller", pairing=cp)
    listener.start()
    caller.start()
    try:
        assert caller.done.wait(5) and caller.exit_status == 2
        errors = [t for lvl, t in caller.events() if lvl == "error"]
        want = "requires encryption" if insecure_side == "caller" else "--insecure"
        assert any(want in t for t in errors), errors
        assert any("refused a call" in t for _, t in listener.events())
        assert listener.call is None
    finally:
        stop(caller, listener)


def test_passphrase_on_both_sides_works():
    from rtai.session import Peer

    cfg = PeerConfig(buffer_ms=40)
    ep_l, _ = clocked(speech(RATE, 2.5, 0), cfg)
    ep_c, _ = clocked(speech(RATE, 1.0, 1), cfg)
    ls = make_udp()
    pw = "a long shared passphrase"
    listener = Peer(cfg, ep_l, ls, None, pairing=Pairing.from_passphrase(pw))
    caller = Peer(cfg, ep_c, make_udp(), ls.getsockname(), pairing=Pairing.from_passphrase(pw))
    listener.start()
    caller.start()
    try:
        assert caller.done.wait(10) and caller.exit_status == 0
    finally:
        stop(caller, listener)
    assert listener.finished_calls[-1]["encrypted"]
    assert listener.finished_calls[-1]["received"] > 300


def test_a_lost_confirm_does_not_stop_the_call():
    from rtai.handshake import Confirm, decode_message, is_handshake

    dropped = []

    def drop_confirm(data: bytes) -> list[bytes]:
        if is_handshake(data) and isinstance(decode_message(data), Confirm):
            dropped.append(data)
            return []
        return [data]

    relays: list[TapRelay] = []

    def via(addr):
        relays.append(TapRelay(addr, drop_confirm).start())
        return relays[0].address

    b = speech(RATE, 2.0, 1)
    listener, caller, sink_l, _ = secure_pair(speech(RATE, 3.0, 0), b, via=via)
    try:
        assert caller.done.wait(15) and caller.exit_status == 0
    finally:
        stop(caller, listener)
        relays[0].stop()
    assert dropped  # no CONFIRM ever reached the listener ...
    s = listener.finished_calls[-1]
    assert s["encrypted"] and s["concealed"] == 0  # ... yet nothing was missed
    heard = sink_l.data()[:, 0]
    ref, got = overlap(b, heard, find_lag(b, heard))
    assert ref.size == b.size and np.array_equal(quantize16(ref), quantize16(got))


class Tamperer:
    """Decides, per genuine caller->listener datagram, which hostile copies to add."""

    def __init__(self) -> None:
        self.rtp: list[bytes] = []
        self.n = 0
        self.expect = {"auth_failed": 0, "replayed": 0}
        self.rng = np.random.default_rng(3)

    def __call__(self, data: bytes) -> list[bytes]:
        if not looks_like_rtp(data) or self.n > 1000:  # the call ends untouched
            return [data]
        if is_rtcp(data):
            flipped = bytearray(data)
            flipped[self.rng.integers(8, len(data))] ^= 0x10  # ciphertext, tag or index
            self.expect["auth_failed"] += 1
            self.expect["replayed"] += 1
            return [bytes(flipped), data, data]  # tampered, genuine, replayed
        self.rtp.append(data)
        self.n += 1
        if self.n < 20:  # let the call settle first
            return [data]
        # Tampered copies go first: a refused packet must not spoil its genuine twin.
        out = []
        kind = self.n % 6
        if kind == 0:  # one bit flipped in the timestamp (authenticated), payload or tag
            b = bytearray(data)
            i = int(self.rng.choice([4, 5, 6, 7, *range(rtp_header_length(data), len(b))]))
            b[i] ^= 1 << int(self.rng.integers(0, 8))
            out.append(bytes(b))
            self.expect["auth_failed"] += 1
        elif kind == 1:  # truncated
            out.append(data[: len(data) - 7])
            self.expect["auth_failed"] += 1
        elif kind == 2:  # replayed a little later
            out.append(self.rtp[-3])
            self.expect["replayed"] += 1
        elif kind == 3 and len(self.rtp) > 200:  # reordered far beyond the window
            out.append(self.rtp[-200])
            self.expect["replayed"] += 1
        elif kind == 4:  # forged: right SSRC, a sequence number ahead, random bytes
            hlen = rtp_header_length(data)
            seq = (int.from_bytes(data[2:4], "big") + 5) & 0xFFFF
            forged = RtpPacket(data[1] & 0x7F, seq, 0, int.from_bytes(data[8:12], "big"),
                               os.urandom(len(data) - hlen)).serialize()  # fmt: skip
            out.append(forged)
            self.expect["auth_failed"] += 1
        out.append(data)
        if kind == 5:  # a duplicate right after the genuine one
            out.append(data)
            self.expect["replayed"] += 1
        return out


def test_tampering_relay_changes_nothing_the_listener_plays_and_is_counted():
    b = speech(RATE, 4.0, 1)
    tamper = Tamperer()
    relays: list[TapRelay] = []

    def via(addr):
        relays.append(TapRelay(addr, tamper).start())
        return relays[0].address

    cfg = PeerConfig(buffer_ms=60, redundancy=0)
    listener, caller, sink_l, _ = secure_pair(speech(RATE, 5.0, 0), b, cfg, via=via)
    try:
        assert caller.done.wait(20)
        time.sleep(0.2)
    finally:
        stop(caller, listener)
        relays[0].stop()
    s = listener.finished_calls[-1]
    exp = tamper.expect
    assert exp["auth_failed"] > 50 and exp["replayed"] > 50
    assert s["auth_failed"] == exp["auth_failed"], (str(s), exp)
    assert s["replayed"] == exp["replayed"]
    assert s["malformed"] == 0
    assert s["concealed"] == 0 and s["decode_errors"] == 0
    heard = sink_l.data()[:, 0]
    lag = find_lag(b, heard)
    ref, got = overlap(b, heard, lag)
    assert ref.size == b.size and np.array_equal(quantize16(ref), quantize16(got))


@pytest.mark.parametrize("codec,insecure", [("pcm", False), ("opus", False), ("pcm", True)])
def test_a_capture_of_an_encrypted_call_holds_none_of_the_payload_bytes(
    codec, insecure, monkeypatch
):
    """The plain (--insecure) run is the control: there every payload is in the capture."""
    from rtai.security import CallGuard

    plain: list[bytes] = []
    original = CallGuard.seal_rtp

    def recording(self, data):  # sees what the senders seal: the real plaintext
        plain.append(data)
        return original(self, data)

    monkeypatch.setattr(CallGuard, "seal_rtp", recording)
    relays: list[TapRelay] = []

    def via(addr):
        relays.append(TapRelay(addr).start())
        return relays[0].address

    block = 480 if codec == "opus" else 128
    cfg = PeerConfig(block_frames=block, codecs=(codec,), buffer_ms=40)
    listener, caller, *_ = secure_pair(
        speech(RATE, 2.0, 0), speech(RATE, 2.0, 1), cfg, via=via, insecure=insecure
    )
    try:
        assert caller.done.wait(15) and caller.exit_status == 0
    finally:
        stop(caller, listener)
        relays[0].stop()
    w = 12
    captured = relays[0].forward + relays[0].reverse
    windows = {d[i : i + w] for d in captured for i in range(len(d) - w + 1)}
    payloads = [p[rtp_header_length(p) :] for p in plain]
    payloads = [p for p in payloads if len(p) >= w and len(set(p)) > 4]  # not silence
    assert len(payloads) > 100
    leaked = [p for p in payloads if any(p[i : i + w] in windows for i in range(len(p) - w + 1))]
    if insecure:
        assert len(leaked) == len(payloads)
    else:
        assert leaked == []


FLOOD = r"""
import os, socket, struct, sys, time
port, seconds, rate, ssrc = int(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)
target = ("127.0.0.1", port)
junk = os.urandom(1 << 16)
sent = 0
t0 = time.monotonic()
batch = rate // 100
while True:
    now = time.monotonic()
    if now - t0 >= seconds:
        break
    for i in range(batch):
        k = sent % 4
        if k == 0:
            p = junk[sent % 60000 : sent % 60000 + 200]  # garbage
        elif k == 1:  # forged SRTP: right SSRC, random sequence number, random "tag"
            p = struct.pack("!BBHII", 0x80, 96, sent & 0xFFFF, sent, ssrc) + junk[i : i + 272]
        elif k == 2:  # forged SRTCP sender report
            p = struct.pack("!BBHI", 0x80, 200, 6, ssrc) + junk[i : i + 44]
        else:
            p = b"RTAI\x01\x01" + junk[i : i + 60]  # handshake garbage
        try:
            s.sendto(p, target)
            sent += 1
        except OSError:
            pass
    delay = t0 + sent / rate - time.monotonic()
    if delay > 0:
        time.sleep(delay)
print(sent)
"""


@pytest.mark.slow
def test_a_flood_of_forged_packets_does_not_disturb_the_call():
    """20,000 hostile datagrams a second for 10 s from another process at the
    listener's port, while an encrypted call runs: concealment stays under 1 %."""
    cfg = PeerConfig(buffer_ms=40)
    listener, caller, *_ = secure_pair(speech(RATE, 13.0, 0), speech(RATE, 12.0, 1), cfg)
    try:
        deadline = time.monotonic() + 5
        while listener.call is None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert listener.call is not None
        port = listener.sock.getsockname()[1]
        flood = subprocess.run(
            [sys.executable, "-c", FLOOD, str(port), "10", "20000", str(caller.ssrc)],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        sent = int(flood.stdout.strip())
        assert caller.done.wait(20)
    finally:
        stop(caller, listener)
    s = listener.finished_calls[-1]
    assert sent > 150_000  # the flood really ran near its rate
    assert s["played"] > 3000
    assert s["concealed"] < 0.01 * s["played"], s
    # Everything that reached the socket was refused before parsing and counted.
    # (Handshake garbage goes to the handshake parser and is counted as malformed.)
    refused = s["foreign"] + s["malformed"]
    assert 0.5 * sent < refused <= sent, (s["foreign"], s["malformed"], sent)
    assert s["auth_failed"] == 0 and s["received"] > 3000
    print(f"flood: {sent} sent, {s['foreign']} refused as foreign, "
          f"{s['concealed']} of {s['played']} blocks concealed")  # fmt: skip
