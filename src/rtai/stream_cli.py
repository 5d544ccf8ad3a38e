"""``rtai send`` and ``rtai receive``: plain RTP for ffmpeg, GStreamer and VLC (the face).

Both are unencrypted and refuse to run without ``--insecure``. Exit status as in
:mod:`rtai.cli`: 0 fine, 1 a run-time failure, 2 bad input.
"""

from __future__ import annotations

import argparse
import socket
import sys

from rtai.config import RATES_HZ, ConfigError, parse_hostport

INSECURE_WARNING = "warning: {what} is plain, unencrypted {proto}: anyone on the path can listen in"


def require_insecure(args, what: str, proto: str = "RTP") -> None:
    """The one-line refusal without --insecure, the warning with it."""
    if not getattr(args, "insecure", False):
        raise ConfigError(
            f"{what} carries audio unencrypted ({proto}); say so with --insecure to go ahead"
        )
    if not getattr(args, "quiet", False):
        print("rtai: " + INSECURE_WARNING.format(what=what, proto=proto), file=sys.stderr)


def _add_audio(p: argparse.ArgumentParser) -> None:
    p.add_argument("--insecure", action="store_true", help="required: the stream is not encrypted")
    p.add_argument("--rate", type=int, default=None, metavar="HZ", help="sample rate (48000)")
    p.add_argument("--channels", type=int, default=None, choices=(1, 2), help="1 or 2 (1)")
    p.add_argument("--codec", choices=("pcm", "opus"), default=None, help="pcm (L16) or opus")
    p.add_argument("--seconds", type=float, metavar="N", help="stop after N seconds")
    p.add_argument("-q", "--quiet", action="store_true", help="print only errors")


def add_send_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("address", metavar="HOST:PORT", help="where to send the RTP (RTCP: PORT+1)")
    _add_audio(p)
    p.add_argument("--input", metavar="SPEC", help="device, sound file or signal (tone:440...)")
    p.add_argument("--frame", type=int, metavar="N", help="frames per packet (480 opus, 128 pcm)")
    p.add_argument("--pt", type=int, default=None, metavar="N", help="payload type (96 / 111)")
    p.add_argument("--bitrate", type=float, default=64, metavar="KBPS", help="Opus bitrate (64)")
    p.add_argument("--sdp-out", metavar="FILE", help="write the SDP describing the stream")


def add_receive_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--port", type=int, default=None, help="UDP port (from --sdp, else 5004)")
    p.add_argument("--bind", default="0.0.0.0", metavar="HOST", help="address to listen on")
    _add_audio(p)
    p.add_argument("--output", metavar="SPEC", help="device, sound file to write, or null")
    p.add_argument("--sdp", metavar="FILE", help="take codec, payload type, rate, channels here")
    p.add_argument("--pt", type=int, default=None, metavar="N", help="payload type (96 / 111)")
    p.add_argument(
        "--frame", type=int, metavar="N", help="pcm: frames per played block (128); opus: "
        "taken from the packets"
    )  # fmt: skip
    p.add_argument(
        "--buffer", default="60", metavar="auto|MS",
        help="jitter buffer: a fixed target in ms (60), or auto",
    )  # fmt: skip
    p.add_argument(
        "--idle", type=float, default=3.0, metavar="S",
        help="the stream has ended when nothing came for S seconds (3)",
    )  # fmt: skip


def _params(args, sdp=None):
    from rtai.stream import StreamParams

    codec = args.codec or (sdp.codec if sdp else "opus")
    if sdp is not None and args.codec and args.codec != sdp.codec:
        raise ConfigError(f"--codec {args.codec} but the SDP describes {sdp.codec}")
    if codec == "opus":
        rate = args.rate or 48000
    else:
        rate = args.rate or (sdp.clock_hz if sdp else 48000)
        if sdp is not None and rate != sdp.clock_hz:
            raise ConfigError(f"--rate {rate} but the SDP's L16 runs at {sdp.clock_hz} Hz")
    if rate not in RATES_HZ:
        raise ConfigError(f"--rate {rate}: use one of {', '.join(map(str, RATES_HZ))}")
    channels = args.channels or (sdp.channels if sdp else 1)
    if sdp is not None and codec == "pcm" and channels != sdp.channels:
        raise ConfigError(f"--channels {channels} but the SDP's L16 has {sdp.channels}")
    pt = args.pt if args.pt is not None else (sdp.payload_type if sdp else None)
    if pt is None:
        pt = 111 if codec == "opus" else 96
    if not 0 <= pt <= 127:
        raise ConfigError(f"--pt {pt}: use 0..127 (96..127 are the dynamic ones)")
    frame = args.frame or (rate // 100 if codec == "opus" else 128)
    if not 16 <= frame <= 4096:
        raise ConfigError(f"--frame {frame}: use 16..4096")
    return StreamParams(codec, rate, channels, frame, pt)


def cmd_send(args) -> int:
    from rtai import codecs
    from rtai.audio.endpoint import open_endpoint
    from rtai.codecs import EncoderSettings
    from rtai.sdp import SdpStream, write_sdp
    from rtai.stream import StreamSender

    params = _params(args)
    reason = codecs.get_codec(params.codec).check(
        params.rate_hz, params.channels, params.block_frames
    )
    if reason:
        raise ConfigError(reason)
    host, port = parse_hostport(args.address)
    require_insecure(args, "rtai send")
    try:
        info = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)[0]
    except socket.gaierror as e:
        raise ConfigError(f"cannot resolve {host}: {e.strerror}") from None
    sock = socket.socket(info[0], socket.SOCK_DGRAM)
    sock.bind(("::", 0) if info[0] == socket.AF_INET6 else ("0.0.0.0", 0))
    if args.sdp_out:
        stream = SdpStream(
            encoding="opus" if params.codec == "opus" else "L16",
            payload_type=params.payload_type,
            clock_hz=48000 if params.codec == "opus" else params.rate_hz,
            channels=params.channels,
            port=port,
            address=info[4][0],
            ptime_ms=params.block_frames * 1000 / params.rate_hz,
            session_name="rtai send",
        )
        try:
            with open(args.sdp_out, "w") as f:
                f.write(write_sdp(stream, origin_address=info[4][0]))
        except OSError as e:
            sock.close()
            raise ConfigError(f"--sdp-out {args.sdp_out}: {e.strerror}") from None
    try:
        endpoint = open_endpoint(
            args.input, "null", params.rate_hz, params.channels, params.block_frames, args.seconds
        )
    except Exception:
        sock.close()
        raise
    sender = StreamSender(
        params,
        endpoint,
        sock,
        info[4],
        EncoderSettings(bitrate_bps=int(args.bitrate * 1000), application="audio"),
        seconds=args.seconds,
        cname=f"rtai@{socket.gethostname()}",
    )
    if not args.quiet:
        print(
            f"rtai: sending {params.codec} RTP (PT {params.payload_type}, {params.rate_hz} Hz, "
            f"{params.channels} ch, {params.block_frames}-frame packets) to {host} port {port}",
            file=sys.stderr,
        )
    try:
        sender.start()
        while not sender.done.wait(0.1):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        sender.stop()
    if not args.quiet:
        print(f"rtai: {sender.summary()}", file=sys.stderr)
    return sender.exit_status


def cmd_receive(args) -> int:
    from rtai.audio.endpoint import open_endpoint
    from rtai.sdp import SdpError, parse_sdp
    from rtai.stream import StreamReceiver

    sdp = None
    if args.sdp:
        try:
            with open(args.sdp) as f:
                sdp = parse_sdp(f.read(1 << 17))
        except OSError as e:
            raise ConfigError(f"--sdp {args.sdp}: {e.strerror}") from None
        except (SdpError, UnicodeDecodeError) as e:
            raise ConfigError(f"--sdp {args.sdp}: {e}") from None
        sdp.codec  # noqa: B018  (refuses encodings rtai cannot play)
    params = _params(args, sdp)
    port = args.port or (sdp.port if sdp and sdp.port else 5004)
    if not 0 < port < 65535:
        raise ConfigError(f"--port {port}: use 1..65534 (RTCP takes the port above)")
    if args.buffer == "auto":
        buffer_ms, auto = 40.0, True
    else:
        try:
            buffer_ms, auto = float(args.buffer), False
        except ValueError:
            raise ConfigError(f"--buffer {args.buffer}: use auto or a number of ms") from None
    if args.idle <= 0:
        raise ConfigError(f"--idle {args.idle:g}: use a positive number of seconds")
    require_insecure(args, "rtai receive")
    try:
        info = socket.getaddrinfo(args.bind, port, type=socket.SOCK_DGRAM)[0]
    except socket.gaierror as e:
        raise ConfigError(f"--bind {args.bind}: {e.strerror}") from None
    socks = []
    try:
        for p in (port, port + 1):
            s = socket.socket(info[0], socket.SOCK_DGRAM)
            socks.append(s)
            s.bind((info[4][0], p, *info[4][2:]))
    except OSError as e:
        for s in socks:
            s.close()
        raise ConfigError(
            f"cannot listen on UDP port {p} ({e.strerror}); pick another with --port"
        ) from None
    # Check the output now, so a bad --output fails before anything arrives.
    out_spec = args.output
    if out_spec is not None and out_spec != "null":
        from rtai.audio.endpoint import open_sink

        probe = open_sink(out_spec, params.rate_hz, params.channels)
        if probe is not None:
            probe.abort()

    def make_endpoint(block_frames: int):
        return open_endpoint(
            "silence", out_spec, params.rate_hz, params.channels, block_frames, None
        )

    receiver = StreamReceiver(
        params,
        make_endpoint,
        socks[0],
        socks[1],
        buffer_ms=buffer_ms,
        buffer_auto=auto,
        seconds=args.seconds,
        idle_s=args.idle,
    )
    if not args.quiet:
        print(
            f"rtai: waiting for {params.codec} RTP (PT {params.payload_type}) on UDP "
            f"{args.bind} port {port} (RTCP {port + 1})",
            file=sys.stderr,
        )
    return run_until_done(receiver, args.quiet)


def run_until_done(peer, quiet: bool) -> int:
    """Start ``peer`` (a StreamReceiver or a JackTripPeer), print its events until it is
    done or Ctrl-C, stop it, print why it ended and its summary; its exit status."""

    def show_events() -> None:
        for e in peer.events():
            if not quiet:
                print(f"rtai: {e}", file=sys.stderr)

    try:
        peer.start()
        while not peer.done.wait(0.1):
            show_events()
    except KeyboardInterrupt:
        pass
    finally:
        peer.stop()
    show_events()
    if not quiet:
        why = f"{peer.reason}; " if peer.reason else ""
        print(f"rtai: {why}{peer.summary()}", file=sys.stderr)
    return peer.exit_status
