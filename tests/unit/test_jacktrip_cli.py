"""`rtai call/listen --protocol jacktrip` is spelled out as `rtai jacktrip -c/-s`."""

import pytest

from rtai.config import ConfigError
from rtai.jacktrip.cli import translate_protocol


@pytest.mark.parametrize(
    "argv, expected",
    [
        (["call", "10.0.0.2:4470", "--protocol", "jacktrip", "--insecure"],
         ["jacktrip", "-c", "10.0.0.2", "--peer-port", "4470", "--insecure"]),
        (["call", "--protocol=jacktrip", "host.example", "-n", "1"],
         ["jacktrip", "-c", "host.example", "-n", "1"]),
        (["call", "[::1]:5000", "--protocol", "jacktrip"],
         ["jacktrip", "-c", "::1", "--peer-port", "5000"]),
        (["call", "::1", "--protocol", "jacktrip"], ["jacktrip", "-c", "::1"]),
        (["listen", "--port", "4470", "--protocol", "jacktrip", "--insecure"],
         ["jacktrip", "-s", "--bind-port", "4470", "--insecure"]),
        (["listen", "--port=9", "--protocol", "jacktrip"], ["jacktrip", "-s", "--bind-port=9"]),
        (["listen", "--protocol", "rtai", "--code", "x"], ["listen", "--code", "x"]),
        (["call", "h", "--code", "x"], ["call", "h", "--code", "x"]),
        (["send", "h:1", "--protocol", "jacktrip"], ["send", "h:1", "--protocol", "jacktrip"]),
    ],
)  # fmt: skip
def test_translation(argv, expected):
    assert translate_protocol(argv) == expected


def test_unknown_protocol_and_missing_host_are_refused():
    with pytest.raises(ConfigError, match="--protocol sip"):
        translate_protocol(["call", "h", "--protocol", "sip"])
    with pytest.raises(ConfigError, match="HOST"):
        translate_protocol(["call", "--protocol", "jacktrip"])
