"""The faces of `rtai send`, `rtai receive` and `rtai jacktrip`: refusals are one line, exit 2."""

from __future__ import annotations

import subprocess
import sys

import pytest


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "rtai", *args], capture_output=True, text=True, timeout=60
    )


@pytest.mark.parametrize(
    "args",
    [
        ("send", "127.0.0.1:5004", "--input", "silence"),
        ("receive", "--port", "5004"),
        ("jacktrip", "-s"),
        ("jacktrip", "-c", "127.0.0.1"),
    ],
)
def test_unencrypted_commands_need_insecure(args):
    r = _run(*args)
    assert r.returncode == 2
    assert r.stderr.count("\n") == 1 and "--insecure" in r.stderr


def test_insecure_prints_a_warning(tmp_path):
    r = _run("send", "127.0.0.1:9", "--insecure", "--input", "silence", "--seconds", "0.2")
    assert r.returncode == 0, r.stderr
    assert "unencrypted" in r.stderr.splitlines()[0]


@pytest.mark.parametrize(
    "sdp, extra, words",
    [
        ("v=0\nm=audio 5000 RTP/AVP 0\na=rtpmap:0 PCMU/8000\n", (), "PCMU"),
        ("v=0\nm=audio 5000 RTP/AVP 97\na=rtpmap:97 L16/48000/1\n", ("--codec", "opus"), "SDP"),
        ("v=0\nm=audio 5000 RTP/AVP 97\na=rtpmap:97 L16/44100/2\n", ("--channels", "1"), "2"),
        ("not an sdp", (), "--sdp"),
    ],
)
def test_receive_rejects_bad_or_conflicting_sdp(tmp_path, sdp, extra, words):
    path = tmp_path / "x.sdp"
    path.write_text(sdp)
    r = _run("receive", "--insecure", "--sdp", str(path), *extra)
    assert r.returncode == 2, r.stderr
    assert r.stderr.count("\n") == 1 and words in r.stderr


def test_send_writes_an_sdp_that_rtai_itself_reads(tmp_path):
    from rtai.sdp import parse_sdp

    path = tmp_path / "rtai.sdp"
    r = _run("send", "127.0.0.1:47998", "--insecure", "--codec", "opus", "--channels", "2",
             "--input", "silence", "--seconds", "0.1", "--sdp-out", str(path))  # fmt: skip
    assert r.returncode == 0, r.stderr
    s = parse_sdp(path.read_text())
    assert (s.codec, s.channels, s.port, s.payload_type, s.ptime_ms) == ("opus", 2, 47998, 111, 10)


@pytest.mark.parametrize(
    "args, words",
    [
        (("jacktrip", "-s", "--insecure", "--rate", "12345"), "--rate"),
        (("jacktrip", "-s", "--insecure", "-b", "12"), "-b"),
        (("jacktrip", "-s", "--insecure", "-r", "0"), "--redundancy"),
        (("send", "127.0.0.1:5004", "--insecure", "--codec", "opus", "--frame", "100"), "opus"),
    ],
)
def test_bad_options_one_line(args, words):
    r = _run(*args)
    assert r.returncode == 2
    assert r.stderr.count("\n") == 1 and words in r.stderr
