"""Peer settings validation and HOST[:PORT] parsing."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rtai.config import (
    DEFAULT_PORT,
    MAX_BLOCK_FRAMES,
    MIN_BLOCK_FRAMES,
    RATES_HZ,
    ConfigError,
    PeerConfig,
    parse_hostport,
)


def test_defaults_validate():
    PeerConfig().validate()


@pytest.mark.parametrize(
    "kwargs",
    [
        {"rate_hz": RATES_HZ[0]},
        {"rate_hz": RATES_HZ[-1]},
        {"channels": 2},
        {"block_frames": MIN_BLOCK_FRAMES},
        {"block_frames": MAX_BLOCK_FRAMES},
        {"buffer_ms": 0.0},
        {"buffer_ms": 2000.0},
        {"seconds": 0.5},
    ],
)
def test_values_at_the_edges_of_each_range_validate(kwargs):
    PeerConfig(**kwargs).validate()


@pytest.mark.parametrize(
    ("kwargs", "option"),
    [
        ({"rate_hz": 44000}, "--rate"),
        ({"rate_hz": 0}, "--rate"),
        ({"channels": 0}, "--channels"),
        ({"channels": 3}, "--channels"),
        ({"block_frames": MIN_BLOCK_FRAMES - 1}, "--frame"),
        ({"block_frames": MAX_BLOCK_FRAMES + 1}, "--frame"),
        ({"buffer_ms": -0.1}, "--buffer"),
        ({"buffer_ms": 2000.5}, "--buffer"),
        ({"buffer_ms": float("nan")}, "--buffer"),
        ({"seconds": 0.0}, "--seconds"),
        ({"seconds": -1.0}, "--seconds"),
        ({"seconds": float("nan")}, "--seconds"),
    ],
)
def test_each_bad_field_is_rejected_naming_its_option(kwargs, option):
    with pytest.raises(ConfigError, match=option):
        PeerConfig(**kwargs).validate()


def test_rate_error_lists_the_supported_rates():
    with pytest.raises(ConfigError) as err:
        PeerConfig(rate_hz=12345).validate()
    for rate in RATES_HZ:
        assert str(rate) in str(err.value)


def test_block_s_is_block_frames_over_rate():
    assert PeerConfig(rate_hz=48000, block_frames=480).block_s == pytest.approx(0.01)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("example.org", ("example.org", DEFAULT_PORT)),
        ("192.0.2.1", ("192.0.2.1", DEFAULT_PORT)),
        ("example.org:6000", ("example.org", 6000)),
        ("127.0.0.1:1", ("127.0.0.1", 1)),
        ("h:65535", ("h", 65535)),
        ("[::1]:5004", ("::1", 5004)),
        ("[::1]:7000", ("::1", 7000)),
        ("[::1]", ("::1", DEFAULT_PORT)),
        ("::1", ("::1", DEFAULT_PORT)),
        ("fe80::1:2", ("fe80::1:2", DEFAULT_PORT)),
        ("  host:80  ", ("host", 80)),
    ],
)
def test_parse_hostport_accepts_every_documented_form(text, expected):
    assert parse_hostport(text) == expected


def test_parse_hostport_uses_the_given_default_port():
    assert parse_hostport("host", default_port=9999) == ("host", 9999)
    assert parse_hostport("[::1]", default_port=9999) == ("::1", 9999)


@pytest.mark.parametrize(
    "text",
    ["h:0", "h:65536", "h:99999", "h:abc", "h:", "h:-1", "h:+80", "[::1]:0", "[::1]:", "[::1]:x"],
)
def test_parse_hostport_rejects_bad_ports(text):
    with pytest.raises(ConfigError, match="port"):
        parse_hostport(text)


@pytest.mark.parametrize("text", ["h:\u00b2", "h:\u0663", "h:\uff18\uff10"])
def test_parse_hostport_rejects_non_ascii_digits_as_a_port(text):
    # Superscript two, Arabic-Indic three, fullwidth "80": str.isdigit() says yes to all.
    with pytest.raises(ConfigError, match="port"):
        parse_hostport(text)


@pytest.mark.parametrize("text", ["", ":5004", "[]:5004", "[]"])
def test_parse_hostport_rejects_a_missing_host(text):
    with pytest.raises(ConfigError, match="missing host|is required"):
        parse_hostport(text)


def test_parse_hostport_rejects_unclosed_bracket():
    with pytest.raises(ConfigError, match=r"\[ADDR\]:PORT"):
        parse_hostport("[::1:5004")


def test_parse_hostport_rejects_junk_after_bracket():
    with pytest.raises(ConfigError, match=r"\[ADDR\]:PORT"):
        parse_hostport("[::1]5004")


@given(st.text(max_size=30))
def test_parse_hostport_only_ever_raises_config_error(text):
    try:
        host, port = parse_hostport(text)
    except ConfigError:
        return
    assert host
    assert 1 <= port <= 65535


@given(st.from_regex(r"[a-z][a-z0-9.-]{0,20}", fullmatch=True), st.integers(1, 65535))
def test_parse_hostport_round_trips_host_and_port(host, port):
    assert parse_hostport(f"{host}:{port}") == (host, port)
