"""Pairing codes, the key exchange through the handshake guards, and rate limiting."""

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rtai.handshake import Accept, Confirm, Hello, Reject
from rtai.pairing import (
    MAX_WRONG_CODES,
    SECURE,
    WORDS,
    AttemptLimiter,
    Pairing,
    PairingError,
    derive_call_keys,
    new_code,
    normalize_code,
)
from rtai.security import (
    WRONG_CODE,
    CallerGuard,
    CallGuard,
    ListenerGuard,
    security_refusal,
)

ADDR = ("127.0.0.1", 40000)


def test_wordlist_is_a_few_hundred_distinct_plain_words():
    assert 256 <= len(WORDS) == len(set(WORDS))
    assert all(re.fullmatch(r"[a-z]{3,8}", w) for w in WORDS)


def test_codes_are_random_and_normalize():
    codes = {new_code() for _ in range(200)}
    assert len(codes) > 195
    for c in list(codes)[:20]:
        assert re.fullmatch(r"\d{1,2}-[a-z]+-[a-z]+", c)
        assert normalize_code(c) == c
    assert normalize_code("  7 Crystal_HARBOR ") == "7-crystal-harbor"


BAD_CODES = ["", "7", "crystal-harbor", "0-crystal-harbor", "100-crystal-harbor",
             "7-crystal-harbr", "7-a-b-c", "x-y-z"]  # fmt: skip


@pytest.mark.parametrize("bad", BAD_CODES)
def test_bad_codes_get_a_message(bad):
    with pytest.raises(PairingError):
        normalize_code(bad)


@given(st.text(max_size=60))
def test_normalize_never_raises_anything_else(text):
    try:
        normalize_code(text)
    except PairingError:
        pass


def hello(guard: CallerGuard, session: str = "s1") -> Hello:
    return Hello(session, 48000, 1, 128, ("pcm",), 11, "c", "rtai", **guard.hello_fields())


def accept_template(session: str = "s1") -> Accept:
    return Accept(session, 48000, 1, 128, "pcm", 96, 22, "c")


def exchange(listener: Pairing, caller: Pairing, now: float = 0.0):
    lg, cg = ListenerGuard(listener), CallerGuard(caller)
    h = hello(cg)
    out = lg.on_hello(h, accept_template(), ADDR, now)
    assert isinstance(out.send, Accept)
    return lg, cg, h, out.send


def test_right_code_gives_both_sides_the_same_keys_and_a_new_code():
    lp = Pairing.issue_codes()
    first = lp.code
    lg, cg, h, acc = exchange(lp, Pairing.from_code(first))
    keys, confirm = cg.finish(h, acc)
    out = lg.on_confirm(confirm, ADDR)
    assert out.established is not None
    assert out.established.keys == keys
    assert lp.code != first and any(first not in t and lp.code in t for _, t in out.events)
    # The two guards' SRTP contexts interoperate, each direction with its own key.
    c, lcall = CallGuard(keys.tx_rx("caller"), 22), CallGuard(keys.tx_rx("listener"), 11)
    from rtai.rtp.packet import RtpPacket

    p = RtpPacket(96, 1, 0, 11, b"voice").serialize()
    assert lcall.open(c.seal_rtp(p), False) == p
    q = RtpPacket(96, 1, 0, 22, b"other way").serialize()
    assert c.open(lcall.seal_rtp(q), False) == q


def test_wrong_code_fails_at_both_ends_and_three_wrong_codes_retire_the_code():
    lp = Pairing.issue_codes()
    first = lp.code
    for _ in range(MAX_WRONG_CODES):
        wrong = Pairing.from_code("1-acorn-acorn" if first != "1-acorn-acorn" else "2-acorn-acorn")
        lg, cg, h, acc = exchange(lp, wrong)
        with pytest.raises(PairingError, match=WRONG_CODE):
            cg.finish(h, acc)
        out = lg.on_reject(Reject(h.session, WRONG_CODE), ADDR)
        assert out.events and "wrong code" in out.events[0][1]
    assert lp.code != first
    assert any("code is now" in t for _, t in out.events)


def test_a_forged_confirm_is_a_wrong_attempt():
    lp = Pairing.from_passphrase("correct horse")
    lg, cg, h, acc = exchange(lp, Pairing.from_passphrase("correct horse"))
    out = lg.on_confirm(Confirm(h.session, "00" * 32), ADDR)
    assert out.established is None and isinstance(out.send, Reject)
    assert lg.wrong_codes == 1


def test_tampered_accept_parameters_fail_the_confirmation():
    lp = Pairing.from_passphrase("pw")
    lg, cg, h, acc = exchange(lp, Pairing.from_passphrase("pw"))
    from dataclasses import replace

    with pytest.raises(PairingError, match=WRONG_CODE):
        cg.finish(h, replace(acc, codec="opus"))  # the transcript binds what was agreed


def test_half_open_exchanges_expire_as_wrong_attempts():
    lp = Pairing.issue_codes()
    lg, *_ = exchange(lp, Pairing.from_code(lp.code), now=0.0)
    assert lg.expire(1.0).events == []
    out = lg.expire(10.0)
    assert lg.pending == {} and out.events


def test_repeated_hello_gets_the_same_accept_without_a_new_exchange():
    lp = Pairing.issue_codes()
    lg, cg, h, acc = exchange(lp, Pairing.from_code(lp.code))
    assert lg.on_hello(h, accept_template(), ADDR, 0.1).send == acc
    assert lg.limiter.refused == 0


def test_rate_limit_per_source_and_global():
    lim = AttemptLimiter(per_source_rate=1, per_source_burst=2, global_rate=2, global_burst=3)
    assert lim.allow("a", 0) and lim.allow("a", 0)
    assert not lim.allow("a", 0)  # this source's burst is spent
    assert lim.allow("b", 0)
    assert not lim.allow("c", 0)  # the global burst is spent
    assert lim.allow("a", 1.0)  # refilled
    assert lim.refused == 2


def test_listener_drops_hellos_over_the_limit():
    lg = ListenerGuard(Pairing.issue_codes(), AttemptLimiter(0.1, 2, 10, 10))
    sent = [
        lg.on_hello(hello(CallerGuard(Pairing.from_passphrase("x")), f"s{i}"),
                    accept_template(f"s{i}"), ADDR, 0.0).send
        for i in range(5)
    ]  # fmt: skip
    assert sum(isinstance(s, Accept) for s in sent) == 2 and sent[2:] == [None] * 3


def test_security_mismatch_is_refused_with_a_clear_reason():
    assert security_refusal(SECURE, SECURE) is None
    assert "--insecure" in security_refusal(SECURE, "insecure")
    assert "requires encryption" in security_refusal("insecure", SECURE)


@settings(max_examples=200, deadline=None)
@given(pake=st.text(max_size=80), confirm=st.text(max_size=80))
def test_garbage_exchange_fields_never_raise(pake, confirm):
    lg = ListenerGuard(Pairing.issue_codes(), AttemptLimiter(1e9, 1e9, 1e9, 1e9))
    h = Hello("s", 48000, 1, 128, ("pcm",), 1, "c", security=SECURE, pake=pake)
    out = lg.on_hello(h, accept_template("s"), ADDR, 0.0)
    assert isinstance(out.send, Accept | Reject)
    lg.on_confirm(Confirm("s", confirm), ADDR)
    cg = CallerGuard(Pairing.from_passphrase("p"))
    h2 = hello(cg, "s")
    acc = Accept("s", 48000, 1, 128, "pcm", 96, 2, "c", pake=pake, confirm=confirm)
    with pytest.raises(PairingError):
        cg.finish(h2, acc)


def test_an_authentic_packet_confirms_when_the_confirm_was_lost():
    from rtai.rtp.packet import RtpPacket

    lp = Pairing.issue_codes()
    lg, cg, h, acc = exchange(lp, Pairing.from_code(lp.code))
    keys, _ = cg.finish(h, acc)
    caller = CallGuard(keys.tx_rx("caller"), 22)
    forged = CallGuard(derive_call_keys(b"\x01" * 32, b"x").tx_rx("caller"), 22)
    pkt = RtpPacket(96, 5, 0, 11, b"voice").serialize()
    assert lg.on_media(forged.seal_rtp(pkt), ADDR, False).established is None
    assert lg.on_media(caller.seal_rtp(pkt), ("127.0.0.2", 1), False).established is None
    out = lg.on_media(caller.seal_rtp(pkt), ADDR, False)
    assert out.established is not None and out.established.keys == keys
    assert lg.pending == {}


@settings(max_examples=200)
@given(
    session=st.text(max_size=20),
    software=st.text(max_size=20),
    codecs=st.lists(st.text(min_size=1, max_size=8), min_size=1, max_size=3),
    pake=st.binary(min_size=33, max_size=33),
    confirm=st.binary(min_size=32, max_size=32),
)
def test_secure_messages_reencode_identically(session, software, codecs, pake, confirm):
    """Both sides hash the HELLO and ACCEPT as re-encoded from the decoded message: the
    transcript binding needs decode-then-encode to give back the very same bytes."""
    from rtai.handshake import decode_message, encode_message

    msgs = [
        Hello(session, 48000, 2, 480, tuple(codecs), 7, "boot:x", software, SECURE, pake.hex()),
        Accept(session, 48000, 1, 480, codecs[0], 111, 9, "boot:y", pake.hex(), confirm.hex()),
        Confirm(session, confirm.hex()),
    ]
    for m in msgs:
        wire = encode_message(m)
        assert decode_message(wire) == m
        assert encode_message(decode_message(wire)) == wire


def test_key_files_and_passphrases(tmp_path):
    key = tmp_path / "key"
    key.write_bytes(b"0123456789abcdef0123\n")
    a, b = Pairing.from_key_file(key), Pairing.from_key_file(str(key))
    assert a.password == b.password and a.kind == "passphrase"
    assert a.password != Pairing.from_passphrase("0123456789abcdef0123").password
    key.write_bytes(b"short")
    with pytest.raises(PairingError, match="16"):
        Pairing.from_key_file(key)
    with pytest.raises(PairingError, match="key-file"):
        Pairing.from_key_file(tmp_path / "missing")
    with pytest.raises(PairingError, match="empty"):
        Pairing.from_passphrase("")
    fixed = Pairing.from_passphrase("pw")
    assert fixed.wrong_attempt() is None and fixed.call_made() is None  # never changes
