"""SRTP/SRTCP AEAD_AES_128_GCM: RFC 7714 vectors, rollover, replay window, fuzzing."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rtai.pairing import derive_call_keys
from rtai.rtp.packet import RtpPacket, parse_rtp
from rtai.rtp.srtp import (
    REPLAY_WINDOW,
    ReplayWindow,
    SrtpError,
    SrtpKeys,
    SrtpReceiver,
    SrtpSender,
    estimate_index,
    rtcp_iv,
    rtp_iv,
)

# RFC 7714 sections 16 and 17 (the key, salt and packets of its test vectors).
KEY = bytes(range(16))
SALT = bytes.fromhex("517569642070726f2071756f")
RFC_KEYS = SrtpKeys(KEY, SALT, KEY, SALT)
RTP_HEADER = bytes.fromhex("8040f17b8041f8d35501a0b2")
RTP_PLAIN = RTP_HEADER + b"Gallia est omnis divisa in partes tres"
RTP_SEALED = RTP_HEADER + bytes.fromhex(
    "f24de3a3fb34de6cacba861c9d7e4bcabe633bd50d294e6f42a5f47a51c7d19b36de3adf8833"
    "899d7f27beb16a9152cf765ee4390cce"
)
RTCP_PLAIN = bytes.fromhex(
    "81c8000d4d6172734e5450314e545032525450200000042a0000e9304c756e61"
    "deadbeefdeadbeefdeadbeefdeadbeefdeadbeef"
)
RTCP_SEALED = bytes.fromhex(
    "81c8000d4d617273"
    "63e94885dcdab67ca727d7662f6b7e997ff5c0f76c06f32dc676a5f1730d6fda4ce09b4686303ded0bb9275b"
    "c84aa45896cf4d2fc5abf87245d9eade"
    "800005d4"
)


def test_rfc7714_ivs():
    assert rtp_iv(SALT, 0x5501A0B2, 0, 0xF17B).hex() == "51753c6580c2726f20718414"
    assert rtcp_iv(SALT, 0x4D617273, 0x5D4).hex() == "517524055203726f207170bb"


def test_rfc7714_16_1_srtp_encryption_and_decryption():
    assert SrtpSender(RFC_KEYS).protect_rtp(RTP_PLAIN) == RTP_SEALED
    assert SrtpReceiver(RFC_KEYS, 0x5501A0B2).unprotect_rtp(RTP_SEALED) == RTP_PLAIN


def test_rfc7714_17_1_srtcp_encryption_and_decryption():
    sender = SrtpSender(RFC_KEYS)
    sender._rtcp_index = 0x5D4  # the vector's SRTCP index
    assert sender.protect_rtcp(RTCP_PLAIN) == RTCP_SEALED
    assert SrtpReceiver(RFC_KEYS, 0x4D617273).unprotect_rtcp(RTCP_SEALED) == RTCP_PLAIN


def _keys(seed: int) -> SrtpKeys:
    return derive_call_keys(bytes([seed]) * 32, b"t").caller_to_listener


def _rtp(seq: int, payload: bytes = b"\x11" * 40, ssrc: int = 1234, **kw) -> bytes:
    return RtpPacket(96, seq, seq * 128, ssrc, payload, **kw).serialize()


def test_header_extensions_and_csrcs_stay_clear_and_are_authenticated():
    keys = _keys(1)
    plain = _rtp(7, csrcs=(5, 6), extensions={1: b"12345678"})
    sealed = SrtpSender(keys).protect_rtp(plain)
    hlen = len(plain) - 40
    assert sealed[:hlen] == plain[:hlen]
    assert b"\x11" * 8 not in sealed[hlen:]
    assert SrtpReceiver(keys, 1234).unprotect_rtp(sealed) == plain
    for i in range(len(sealed)):  # any flipped bit anywhere is refused
        bad = bytearray(sealed)
        bad[i] ^= 0x04
        with pytest.raises(SrtpError):
            SrtpReceiver(keys, 1234).unprotect_rtp(bytes(bad))


def test_rollover_counter_at_the_sequence_wrap():
    keys = _keys(2)
    tx, rx = SrtpSender(keys), SrtpReceiver(keys, 1234)
    seqs = [(65530 + i) & 0xFFFF for i in range(20)]
    for s in seqs:
        assert parse_rtp(rx.unprotect_rtp(tx.protect_rtp(_rtp(s)))).sequence_number == s
    assert rx.roc == 1 and rx.s_l == seqs[-1]
    # A late packet from before the wrap still opens (ROC - 1 estimate) ...
    tx2, rx2 = SrtpSender(keys), SrtpReceiver(keys, 1234)
    sealed = {s: tx2.protect_rtp(_rtp(s)) for s in seqs}
    for s in seqs[:3] + seqs[8:]:
        rx2.unprotect_rtp(sealed[s])
    rx2.unprotect_rtp(sealed[seqs[3]])  # 65533 after 2 had arrived
    # ... and a packet sealed with the old ROC cannot be replayed after the wrap.
    with pytest.raises(SrtpError) as e:
        rx2.unprotect_rtp(sealed[seqs[3]])
    assert e.value.kind == "replayed"


def test_first_packet_received_after_the_senders_wrap_still_opens():
    keys = _keys(9)
    tx = SrtpSender(keys)
    sealed = [tx.protect_rtp(_rtp((65530 + i) & 0xFFFF)) for i in range(12)]
    rx = SrtpReceiver(keys, 1234)  # the six packets before the wrap were lost
    for p in sealed[6:]:
        rx.unprotect_rtp(p)
    assert rx.roc == 1
    assert rx.unprotect_rtp(sealed[2]) == _rtp(65532)  # late, from before the wrap
    with pytest.raises(SrtpError):
        rx.unprotect_rtp(sealed[2])


def test_estimate_index_follows_rfc3711():
    assert estimate_index(0, 100, 101) == 101
    assert estimate_index(0, 65535, 0) == 1 << 16
    assert estimate_index(1, 2, 65534) == 65534  # from before the wrap
    assert estimate_index(0, 2, 65534) < 0  # before the very first packet


def test_replay_window_across_the_wrap():
    keys = _keys(3)
    tx, rx = SrtpSender(keys), SrtpReceiver(keys, 1234)
    start = 65535 - 60
    sealed = [tx.protect_rtp(_rtp((start + i) & 0xFFFF)) for i in range(200)]
    for p in sealed[:150]:
        rx.unprotect_rtp(p)
    for p in (sealed[149], sealed[100], sealed[60]):  # 60 and 61 straddle the wrap
        with pytest.raises(SrtpError) as e:
            rx.unprotect_rtp(p)
        assert e.value.kind == "replayed"
    with pytest.raises(SrtpError) as e:  # older than the window
        rx.unprotect_rtp(sealed[150 - REPLAY_WINDOW - 1])
    assert e.value.kind == "replayed"
    # Reordered within the window: skipped ones arrive late and are accepted once.
    rx2 = SrtpReceiver(keys, 1234)
    order = list(range(0, 200, 2)) + list(range(199, 72, -2))
    for i in order:
        rx2.unprotect_rtp(sealed[i])
    with pytest.raises(SrtpError):
        rx2.unprotect_rtp(sealed[69])  # 130 behind the highest: beyond the window


def test_replay_window_unit():
    w = ReplayWindow(8)
    assert w.check(5)
    w.commit(5)
    assert not w.check(5) and w.check(4) and w.check(6)
    w.commit(20)
    assert not w.check(12) and w.check(13) and not w.check(20)
    w.commit(13)
    assert not w.check(13)


def test_rtcp_replay_and_tamper():
    keys = _keys(4)
    tx, rx = SrtpSender(keys), SrtpReceiver(keys, 0x4D617273)
    sealed = [tx.protect_rtcp(RTCP_PLAIN) for _ in range(3)]
    assert rx.unprotect_rtcp(sealed[1]) == RTCP_PLAIN
    assert rx.unprotect_rtcp(sealed[0]) == RTCP_PLAIN
    with pytest.raises(SrtpError) as e:
        rx.unprotect_rtcp(sealed[1])
    assert e.value.kind == "replayed"
    bad = bytearray(sealed[2])
    bad[-1] ^= 1  # the index is authenticated too
    with pytest.raises(SrtpError) as e:
        rx.unprotect_rtcp(bytes(bad))
    assert e.value.kind == "auth_failed"
    assert rx.unprotect_rtcp(sealed[2]) == RTCP_PLAIN  # the failure changed no state


def test_directions_use_separate_keys():
    keys = derive_call_keys(b"\x07" * 32, b"transcript")
    c2l, l2c = keys.caller_to_listener, keys.listener_to_caller
    assert len({c2l.rtp_key, c2l.rtcp_key, l2c.rtp_key, l2c.rtcp_key}) == 4
    assert len({c2l.rtp_salt, c2l.rtcp_salt, l2c.rtp_salt, l2c.rtcp_salt}) == 4
    sealed = SrtpSender(c2l).protect_rtp(_rtp(1))
    assert SrtpReceiver(c2l, 1234).unprotect_rtp(sealed) == _rtp(1)
    with pytest.raises(SrtpError) as e:  # reflected back at its sender: refused
        SrtpReceiver(l2c, 1234).unprotect_rtp(sealed)
    assert e.value.kind == "auth_failed"
    assert keys.caller_confirm_key != keys.listener_confirm_key
    other = derive_call_keys(b"\x07" * 32, b"another transcript")
    assert other.caller_to_listener != c2l  # bound to the transcript


def test_wrong_ssrc_is_refused_before_any_cryptography():
    keys = _keys(5)
    sealed = SrtpSender(keys).protect_rtp(_rtp(1, ssrc=99))
    with pytest.raises(SrtpError) as e:
        SrtpReceiver(keys, 1234).unprotect_rtp(sealed)
    assert e.value.kind == "wrong_source"


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=300))
def test_unprotect_of_arbitrary_bytes_raises_only_srtp_error(data):
    rx = SrtpReceiver(_keys(6), 1234)
    for f in (rx.unprotect_rtp, rx.unprotect_rtcp):
        try:
            f(data)
        except SrtpError as e:
            assert e.kind in ("malformed", "wrong_source", "replayed", "auth_failed")


@settings(max_examples=300, deadline=None)
@given(
    seq=st.integers(0, 65535),
    payload=st.binary(max_size=200),
    flips=st.lists(st.integers(0, 10_000), min_size=1, max_size=4),
)
def test_sealed_packets_with_flipped_bits_never_open(seq, payload, flips):
    keys = _keys(7)
    sealed = bytearray(SrtpSender(keys).protect_rtp(_rtp(seq, payload)))
    for f in flips:
        sealed[f % len(sealed)] ^= 1 << (f % 8)
    if bytes(sealed) == SrtpSender(keys).protect_rtp(_rtp(seq, payload)):
        return  # the flips cancelled out
    with pytest.raises(SrtpError):
        SrtpReceiver(keys, 1234).unprotect_rtp(bytes(sealed))
