"""Handshake messages, negotiation, the caller's retry state machine and liveness."""

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rtai.handshake import (
    HELLO_RETRY_S,
    HELLO_TIMEOUT_S,
    KEEPALIVE_S,
    MAGIC,
    MAX_MESSAGE_BYTES,
    PEER_TIMEOUT_S,
    PROTOCOL_VERSION,
    Accept,
    Bye,
    CallerHandshake,
    HandshakeError,
    Hello,
    Keepalive,
    Liveness,
    MediaParams,
    MsgType,
    Reject,
    decode_message,
    encode_message,
    is_handshake,
    negotiate,
)

short_text = st.text(max_size=24)
codec_name = st.text(min_size=1, max_size=12)
u32 = st.integers(0, 2**32 - 1)

hellos = st.builds(
    Hello,
    session=short_text,
    rate_hz=st.integers(8000, 384000),
    channels=st.integers(1, 2),
    block_frames=st.integers(16, 4096),
    codecs=st.lists(codec_name, min_size=1, max_size=4).map(tuple),
    ssrc=u32,
    clock_id=short_text,
    software=short_text,
)
accepts = st.builds(
    Accept,
    session=short_text,
    rate_hz=st.integers(8000, 384000),
    channels=st.integers(1, 2),
    block_frames=st.integers(16, 4096),
    codec=codec_name,
    payload_type=st.integers(0, 127),
    ssrc=u32,
    clock_id=short_text,
)
rejects = st.builds(Reject, session=short_text, reason=st.text(max_size=100))
keepalives = st.builds(Keepalive, session=short_text)
byes = st.builds(Bye, session=short_text, reason=short_text)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=10,
)
_ALL_FIELDS = [
    "session",
    "rate_hz",
    "channels",
    "block_frames",
    "codecs",
    "codec",
    "payload_type",
    "ssrc",
    "clock_id",
    "software",
    "reason",
]
json_bodies = st.fixed_dictionaries({}, optional={name: json_values for name in _ALL_FIELDS})

VALID_HELLO_BODY = {
    "session": "abc",
    "rate_hz": 48000,
    "channels": 1,
    "block_frames": 128,
    "codecs": ["pcm"],
    "ssrc": 1234,
    "clock_id": "boot:x",
    "software": "rtai",
}


def _raw(msg_type: int, body, version: int = PROTOCOL_VERSION) -> bytes:
    text = body if isinstance(body, bytes) else json.dumps(body).encode()
    return MAGIC + bytes((version, msg_type)) + text


def _hello(**overrides) -> Hello:
    fields = {
        "session": "s1",
        "rate_hz": 48000,
        "channels": 2,
        "block_frames": 128,
        "codecs": ("pcm",),
        "ssrc": 42,
        "clock_id": "boot:a",
    }
    fields.update(overrides)
    return Hello(**fields)


# -- encode / decode ---------------------------------------------------------------------


@given(st.one_of(hellos, accepts, rejects, keepalives, byes))
def test_every_message_type_round_trips(msg):
    data = encode_message(msg)
    assert is_handshake(data)
    assert decode_message(data) == msg


@pytest.mark.parametrize(
    ("msg", "msg_type"),
    [
        (_hello(), MsgType.HELLO),
        (Accept("s", 48000, 1, 128, "pcm", 96, 1, "c"), MsgType.ACCEPT),
        (Reject("s", "no"), MsgType.REJECT),
        (Keepalive("s"), MsgType.KEEPALIVE),
        (Bye("s"), MsgType.BYE),
    ],
)
def test_wire_form_is_magic_version_type_then_json(msg, msg_type):
    data = encode_message(msg)
    assert data[:4] == b"RTAI"
    assert data[4] == PROTOCOL_VERSION
    assert data[5] == msg_type
    assert isinstance(json.loads(data[6:]), dict)


def test_hello_without_software_decodes_with_the_default():
    body = {k: v for k, v in VALID_HELLO_BODY.items() if k != "software"}
    assert decode_message(_raw(MsgType.HELLO, body)).software == ""


def test_encoding_a_message_too_long_for_one_datagram_raises():
    with pytest.raises(HandshakeError, match="too long"):
        encode_message(Reject("s", "x" * MAX_MESSAGE_BYTES))


@given(st.binary(max_size=300))
def test_decode_of_arbitrary_bytes_only_raises_handshake_error(data):
    try:
        decode_message(data)
    except HandshakeError:
        pass


@given(st.integers(0, 255), st.binary(max_size=300))
def test_decode_of_arbitrary_body_after_magic_only_raises_handshake_error(msg_type, body):
    try:
        decode_message(_raw(msg_type, body))
    except HandshakeError:
        pass


@given(st.sampled_from(list(MsgType)), json_bodies)
def test_decode_of_arbitrary_json_fields_only_raises_handshake_error(msg_type, body):
    data = _raw(msg_type, body)
    if len(data) > MAX_MESSAGE_BYTES:
        return
    try:
        msg = decode_message(data)
    except HandshakeError:
        return
    assert decode_message(encode_message(msg)) == msg


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("rate_hz", 7999),
        ("rate_hz", 384001),
        ("rate_hz", "48000"),
        ("rate_hz", 48000.0),
        ("channels", 0),
        ("channels", 3),
        ("channels", True),
        ("block_frames", 15),
        ("block_frames", 4097),
        ("ssrc", -1),
        ("ssrc", 2**32),
        ("codecs", []),
        ("codecs", "pcm"),
        ("codecs", [""]),
        ("codecs", [1]),
        ("codecs", ["x" * 33]),
        ("codecs", ["pcm"] * 17),
        ("session", 5),
        ("session", None),
        ("clock_id", "c" * 257),
        ("software", ["rtai"]),
    ],
)
def test_out_of_range_or_mistyped_field_is_rejected(field, value):
    body = {**VALID_HELLO_BODY, field: value}
    with pytest.raises(HandshakeError, match=field):
        decode_message(_raw(MsgType.HELLO, body))


@pytest.mark.parametrize("payload_type", [-1, 128])
def test_accept_with_payload_type_out_of_range_is_rejected(payload_type):
    body = json.loads(encode_message(Accept("s", 48000, 1, 128, "pcm", 96, 1, "c"))[6:])
    body["payload_type"] = payload_type
    with pytest.raises(HandshakeError, match="payload_type"):
        decode_message(_raw(MsgType.ACCEPT, body))


def test_valid_hello_body_is_accepted():
    # Guards the parametrized rejections above: only the overridden field is wrong.
    assert decode_message(_raw(MsgType.HELLO, VALID_HELLO_BODY)).codecs == ("pcm",)


@pytest.mark.parametrize("missing", ["session", "rate_hz", "codecs", "ssrc", "clock_id"])
def test_hello_missing_a_required_field_is_rejected(missing):
    body = {k: v for k, v in VALID_HELLO_BODY.items() if k != missing}
    with pytest.raises(HandshakeError, match=missing):
        decode_message(_raw(MsgType.HELLO, body))


@pytest.mark.parametrize("body", [[], [1, 2], 1, "text", None, True])
def test_json_body_that_is_not_an_object_is_rejected(body):
    with pytest.raises(HandshakeError, match="not an object"):
        decode_message(_raw(MsgType.KEEPALIVE, body))


@pytest.mark.parametrize("body", [b"{", b"", b"\xff\xfe{}", b"{'a': 1}"])
def test_body_that_is_not_json_is_rejected(body):
    with pytest.raises(HandshakeError, match="JSON"):
        decode_message(_raw(MsgType.KEEPALIVE, body))


def test_deeply_nested_json_is_rejected_not_crashing():
    body = b"[" * 590 + b"]" * 590
    with pytest.raises(HandshakeError):
        decode_message(_raw(MsgType.KEEPALIVE, body))


@pytest.mark.parametrize("msg_type", [0, 7, 200, 255])
def test_unknown_message_type_is_rejected(msg_type):
    with pytest.raises(HandshakeError, match="unknown handshake message type"):
        decode_message(_raw(msg_type, {"session": "s"}))


@pytest.mark.parametrize("version", [0, 2, 255])
def test_other_protocol_version_is_rejected(version):
    with pytest.raises(HandshakeError, match="version"):
        decode_message(_raw(MsgType.KEEPALIVE, {"session": "s"}, version=version))


def test_oversized_datagram_is_rejected_even_if_well_formed():
    body = {"session": "s" * 200, "reason": "r" * (MAX_MESSAGE_BYTES)}
    data = _raw(MsgType.REJECT, body)
    assert len(data) > MAX_MESSAGE_BYTES
    with pytest.raises(HandshakeError, match="oversized"):
        decode_message(data)


@pytest.mark.parametrize("data", [b"", b"RTAI", b"RTAI\x01", b"RTAX\x01\x04{}", b"\x80\x60"])
def test_short_or_non_magic_datagram_is_not_a_handshake(data):
    with pytest.raises(HandshakeError, match="not a handshake"):
        decode_message(data)


def test_is_handshake_tells_magic_from_rtp():
    assert is_handshake(encode_message(Keepalive("s")))
    assert not is_handshake(b"\x80\x60\x00\x01")
    assert not is_handshake(b"")


# -- negotiate ---------------------------------------------------------------------------

PTS = {"pcm": 96, "opus": 111}


def test_negotiate_equal_params_accepts_with_the_codec_payload_type():
    local = MediaParams(48000, 2, 128, ("pcm",))
    ans = negotiate(_hello(), local, local_ssrc=7, clock_id="boot:b", payload_types=PTS)
    assert ans == Accept("s1", 48000, 2, 128, "pcm", 96, 7, "boot:b")


def test_negotiate_rate_mismatch_rejects_naming_the_rate_option():
    local = MediaParams(44100, 2, 128)
    ans = negotiate(_hello(rate_hz=48000), local, 7, "c", PTS)
    assert isinstance(ans, Reject)
    assert ans.session == "s1"
    assert "--rate" in ans.reason and "48000" in ans.reason and "44100" in ans.reason


def test_negotiate_block_mismatch_rejects_naming_the_frame_option():
    local = MediaParams(48000, 2, 256)
    ans = negotiate(_hello(block_frames=128), local, 7, "c", PTS)
    assert isinstance(ans, Reject)
    assert "--frame" in ans.reason and "128" in ans.reason and "256" in ans.reason


@pytest.mark.parametrize(
    ("caller", "listener", "agreed"), [(1, 2, 1), (2, 1, 1), (2, 2, 2), (1, 1, 1)]
)
def test_negotiate_reconciles_channels_to_the_smaller(caller, listener, agreed):
    ans = negotiate(_hello(channels=caller), MediaParams(48000, listener, 128), 7, "c", PTS)
    assert isinstance(ans, Accept)
    assert ans.channels == agreed


def test_negotiate_picks_the_callers_first_preference_the_listener_has():
    local = MediaParams(48000, 2, 128, ("pcm", "opus"))
    ans = negotiate(_hello(codecs=("flac", "opus", "pcm")), local, 7, "c", PTS)
    assert isinstance(ans, Accept)
    assert (ans.codec, ans.payload_type) == ("opus", 111)


def test_negotiate_without_a_common_codec_rejects_listing_both_sides():
    local = MediaParams(48000, 2, 128, ("pcm",))
    ans = negotiate(_hello(codecs=("opus",)), local, 7, "c", PTS)
    assert isinstance(ans, Reject)
    assert "no common codec" in ans.reason
    assert "opus" in ans.reason and "pcm" in ans.reason


# -- CallerHandshake ---------------------------------------------------------------------

TICK_S = 1 / 64  # exact in binary, so the fake clock has no rounding drift


def test_caller_retransmits_hello_every_retry_interval_until_timeout():
    hello = _hello()
    hs = CallerHandshake(hello, started_s=10.0)
    sent_at = []
    for i in range(int((HELLO_TIMEOUT_S + 1) / TICK_S)):
        now = 10.0 + i * TICK_S
        data = hs.poll(now)
        if data is not None:
            assert decode_message(data) == hello
            sent_at.append(now)
    assert sent_at[0] == 10.0
    gaps = {b - a for a, b in zip(sent_at, sent_at[1:], strict=False)}
    assert gaps == {HELLO_RETRY_S}
    assert sent_at[-1] < 10.0 + HELLO_TIMEOUT_S
    assert len(sent_at) == round(HELLO_TIMEOUT_S / HELLO_RETRY_S)


def test_caller_times_out_after_the_timeout_and_not_before():
    hs = CallerHandshake(_hello(), started_s=3.0)
    assert not hs.timed_out(3.0 + HELLO_TIMEOUT_S - TICK_S)
    assert hs.timed_out(3.0 + HELLO_TIMEOUT_S)
    assert hs.poll(3.0 + HELLO_TIMEOUT_S) is None


def test_caller_does_not_resend_before_the_retry_interval():
    hs = CallerHandshake(_hello(), started_s=0.0)
    assert hs.poll(0.0) is not None
    assert hs.poll(HELLO_RETRY_S - TICK_S) is None
    assert hs.poll(HELLO_RETRY_S) is not None


@pytest.mark.parametrize(
    "answer", [Accept("s1", 48000, 1, 128, "pcm", 96, 9, "c"), Reject("s1", "no")]
)
def test_caller_stops_sending_after_an_answer_and_never_times_out(answer):
    hs = CallerHandshake(_hello(), started_s=0.0)
    assert hs.poll(0.0) is not None
    assert hs.receive(answer) == answer
    assert hs.result == answer
    assert hs.poll(HELLO_RETRY_S) is None
    assert hs.poll(2 * HELLO_TIMEOUT_S) is None
    assert not hs.timed_out(2 * HELLO_TIMEOUT_S)


def test_caller_ignores_answers_for_another_session():
    hs = CallerHandshake(_hello(session="mine"), started_s=0.0)
    hs.poll(0.0)
    assert hs.receive(Accept("theirs", 48000, 1, 128, "pcm", 96, 9, "c")) is None
    assert hs.receive(Reject("theirs", "no")) is None
    assert hs.result is None
    assert hs.poll(HELLO_RETRY_S) is not None


def test_caller_ignores_messages_that_are_not_answers():
    hs = CallerHandshake(_hello(session="mine"), started_s=0.0)
    for msg in (Keepalive("mine"), Bye("mine"), _hello(session="mine")):
        assert hs.receive(msg) is None
    assert hs.result is None


def test_caller_keeps_the_first_answer():
    hs = CallerHandshake(_hello(session="s1"), started_s=0.0)
    first = Accept("s1", 48000, 1, 128, "pcm", 96, 9, "c")
    hs.receive(first)
    assert hs.receive(Reject("s1", "late")) is None
    assert hs.result == first


# -- Liveness ----------------------------------------------------------------------------


def test_keepalive_is_due_once_per_interval():
    live = Liveness(now_s=100.0)
    assert not live.keepalive_due(100.0 + KEEPALIVE_S - TICK_S)
    assert live.keepalive_due(100.0 + KEEPALIVE_S)
    assert not live.keepalive_due(100.0 + KEEPALIVE_S + TICK_S)
    assert live.keepalive_due(100.0 + 2 * KEEPALIVE_S)


def test_peer_is_lost_after_the_timeout_without_hearing_it():
    live = Liveness(now_s=100.0)
    assert not live.peer_lost(100.0 + PEER_TIMEOUT_S - TICK_S)
    assert live.peer_lost(100.0 + PEER_TIMEOUT_S)


def test_hearing_the_peer_restarts_the_timeout():
    live = Liveness(now_s=100.0)
    live.heard(103.0)
    assert not live.peer_lost(100.0 + PEER_TIMEOUT_S)
    assert not live.peer_lost(103.0 + PEER_TIMEOUT_S - TICK_S)
    assert live.peer_lost(103.0 + PEER_TIMEOUT_S)
