"""RTP header extension elements that rtai uses (RFC 8285 element bodies).

``abs-capture-time`` (http://www.webrtc.org/experiments/rtp-hdrext/abs-capture-time)
carries the time the block's first sample was captured as a 64-bit Q32.32
timestamp. rtai fills it from the sender's monotonic clock mapped from
PortAudio's ``inputBufferAdcTime``; a receiver on the same host (same boot, so
the same ``CLOCK_MONOTONIC``) can subtract it from its own playout time to get
one-way mouth-to-ear latency. The optional 8-byte capture clock offset is not sent.
"""

from __future__ import annotations

import struct

from rtai.rtp.packet import RtpError
from rtai.rtp.rtcp import ntp_from_seconds, seconds_from_ntp

ABS_CAPTURE_TIME_ID = 1
ABS_CAPTURE_TIME_URI = "http://www.webrtc.org/experiments/rtp-hdrext/abs-capture-time"

# Q32.32 seconds: the same fixed point as an NTP timestamp, so the RTCP helpers serve.
seconds_to_q32 = ntp_from_seconds
q32_to_seconds = seconds_from_ntp


def encode_abs_capture_time(capture_s: float) -> bytes:
    return struct.pack("!Q", seconds_to_q32(capture_s))


def decode_abs_capture_time(body: bytes) -> float:
    """Return the capture time in seconds; raise RtpError for a wrong-sized body."""
    if len(body) not in (8, 16):
        raise RtpError(f"abs-capture-time element of {len(body)} bytes (expected 8 or 16)")
    return q32_to_seconds(struct.unpack_from("!Q", body)[0])
