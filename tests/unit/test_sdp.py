"""SDP parse/write: real descriptions from ffmpeg and GStreamer, round trips, garbage."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rtai.sdp import SdpError, SdpStream, parse_sdp, write_sdp

# Written by ffmpeg 5.1 (Debian 12): `ffmpeg ... -c:a pcm_s16be -f rtp -sdp_file`.
FFMPEG_L16 = """v=0
o=- 0 0 IN IP4 127.0.0.1
s=No Name
c=IN IP4 127.0.0.1
t=0 0
a=tool:libavformat LIBAVFORMAT_VERSION
m=audio 47000 RTP/AVP 97
b=AS:768
a=rtpmap:97 L16/48000/1
"""

# ffmpeg 5.1, `-ac 2 -c:a libopus`: the rtpmap says 2 channels, sprop-stereo says so too.
FFMPEG_OPUS_STEREO = """v=0
o=- 0 0 IN IP4 127.0.0.1
s=No Name
c=IN IP4 127.0.0.1
t=0 0
a=tool:libavformat LIBAVFORMAT_VERSION
m=audio 47000 RTP/AVP 97
b=AS:96
a=rtpmap:97 opus/48000/2
a=fmtp:97 sprop-stereo=1
"""

# ffmpeg 5.1, `-ac 1 -c:a libopus`: no fmtp at all, yet the rtpmap still says /2.
FFMPEG_OPUS_MONO = """v=0
o=- 0 0 IN IP4 127.0.0.1
s=No Name
c=IN IP4 127.0.0.1
t=0 0
a=tool:libavformat LIBAVFORMAT_VERSION
m=audio 47000 RTP/AVP 97
b=AS:64
a=rtpmap:97 opus/48000/2
"""

# The shape GStreamer's sdp tools (and VLC's sout) write: CRLF, several formats, ptime.
GST_STYLE = (
    "v=0\r\no=- 1188340656180883 1 IN IP4 192.0.2.7\r\ns=Session streamed by GStreamer\r\n"
    "i=server.sh\r\nt=0 0\r\na=tool:GStreamer\r\na=type:broadcast\r\n"
    "m=video 5000 RTP/AVP 96\r\nc=IN IP4 192.0.2.1\r\na=rtpmap:96 H264/90000\r\n"
    "m=audio 5002 RTP/AVP 111 0\r\nc=IN IP4 192.0.2.2\r\n"
    "a=rtpmap:111 OPUS/48000/2\r\na=fmtp:111 sprop-stereo=0; useinbandfec=1\r\n"
    "a=ptime:20\r\n"
)


# Written by VLC 3.0.24 (Debian 12), `--sout '#transcode{acodec=s16b}:rtp{...,sdp=...}'`:
# the rtpmap gives no channel count (1 by RFC 4566), the origin is a host name.
VLC_L16 = """v=0
o=- 17199882520208855461 17199882520208855461 IN IP4 vm
s=Unnamed
i=N/A
c=IN IP4 127.0.0.1
t=0 0
a=tool:vlc 3.0.24
a=recvonly
a=type:broadcast
a=charset:UTF-8
m=audio 47300 RTP/AVP 96
b=AS:768
b=RR:0
a=rtpmap:96 L16/48000
"""


def test_vlc_l16_without_channel_count():
    s = parse_sdp(VLC_L16)
    assert (s.codec, s.payload_type, s.clock_hz, s.channels, s.port) == ("pcm", 96, 48000, 1, 47300)


def test_ffmpeg_l16():
    s = parse_sdp(FFMPEG_L16)
    assert (s.codec, s.payload_type, s.clock_hz, s.channels) == ("pcm", 97, 48000, 1)
    assert (s.address, s.port) == ("127.0.0.1", 47000)


def test_opus_channels_come_from_sprop_stereo_not_the_rtpmap():
    assert parse_sdp(FFMPEG_OPUS_STEREO).channels == 2
    mono = parse_sdp(FFMPEG_OPUS_MONO)
    assert (mono.codec, mono.channels, mono.clock_hz) == ("opus", 1, 48000)


def test_gstreamer_style_skips_video_and_takes_the_audio_stream():
    s = parse_sdp(GST_STYLE)
    assert (s.codec, s.payload_type, s.port, s.address) == ("opus", 111, 5002, "192.0.2.2")
    assert s.channels == 1 and s.ptime_ms == 20.0
    assert s.fmtp == {"sprop-stereo": "0", "useinbandfec": "1"}


def test_static_payload_type_without_rtpmap():
    s = parse_sdp("v=0\nc=IN IP4 10.0.0.1\nm=audio 6000 RTP/AVP 10\n")
    assert (s.codec, s.clock_hz, s.channels, s.payload_type) == ("pcm", 44100, 2, 10)


@pytest.mark.parametrize(
    "stream",
    [
        SdpStream("L16", 96, 48000, 2, 5004, "127.0.0.1"),
        SdpStream("L16", 96, 16000, 1, 5004, "::1"),
        SdpStream("opus", 111, 48000, 1, 6000, "127.0.0.1", ptime_ms=10),
        SdpStream("opus", 111, 48000, 2, 6000, "127.0.0.1", ptime_ms=20),
    ],
)
def test_write_then_parse_round_trip(stream):
    text = write_sdp(stream)
    back = parse_sdp(text)
    assert (back.codec, back.payload_type, back.clock_hz, back.channels) == (
        stream.codec,
        stream.payload_type,
        stream.clock_hz,
        stream.channels,
    )
    assert (back.port, back.address, back.ptime_ms) == (
        stream.port,
        stream.address,
        stream.ptime_ms,
    )


def test_written_opus_rtpmap_always_says_two_channels():
    text = write_sdp(SdpStream("opus", 111, 48000, 1, 6000, "127.0.0.1"))
    assert "a=rtpmap:111 opus/48000/2" in text
    assert "sprop-stereo=0" in text


@pytest.mark.parametrize(
    "text, words",
    [
        ("", "v=0"),
        ("v=0\nm=video 5000 RTP/AVP 96\na=rtpmap:96 H264/90000\n", "no audio"),
        ("v=0\nm=audio 5000 RTP/AVP 97\n", "no rtpmap"),
        ("v=0\nm=audio 99999 RTP/AVP 97\na=rtpmap:97 L16/48000/1\n", "port"),
        ("v=0\nm=audio 5000 RTP/AVP 97\na=rtpmap:97 opus/16000/2\n", "48000"),
        ("v=0\nm=audio 5000 RTP/AVP 97\na=rtpmap:97 L16/x/1\n", "clock"),
        ("v=1\n", "version"),
        ("hello\n", "not an SDP line"),
    ],
)
def test_bad_descriptions_say_why(text, words):
    with pytest.raises(SdpError, match=words):
        parse_sdp(text)


def test_unknown_encoding_is_refused_by_codec():
    s = parse_sdp("v=0\nm=audio 5000 RTP/AVP 0\na=rtpmap:0 PCMU/8000\n")
    with pytest.raises(SdpError, match="PCMU"):
        _ = s.codec


_LINES = st.lists(
    st.one_of(
        st.text(max_size=60),
        st.sampled_from(["v=0", "m=audio 5004 RTP/AVP 97", "a=rtpmap:97 L16/48000/1"]),
        st.builds(lambda k, v: f"{k}={v}", st.sampled_from("vmcaost"), st.text(max_size=40)),
    ),
    max_size=12,
)


@settings(max_examples=400, deadline=None)
@given(_LINES)
def test_garbage_raises_only_sdp_error(lines):
    try:
        s = parse_sdp("\n".join(lines))
    except SdpError:
        return
    assert 0 <= s.payload_type <= 127 and 0 <= s.port <= 65535
