"""The ``rtai`` command line: argument parsing, messages and exit codes.

Exit status: 0 after a clean call or run, 1 when a call failed at run time
(no answer, peer vanished), 2 for bad input (options, files, devices, ports,
a refused call), 130 after Ctrl-C before anything started.
"""

from __future__ import annotations

import argparse
import signal
import socket
import sys
import time

from rich.console import Console
from rich.live import Live

from rtai import __version__, codecs
from rtai.codecs import EncoderSettings
from rtai.config import (
    DEFAULT_CODEC,
    DEFAULT_PORT,
    ConfigError,
    PeerConfig,
    buffer_ms,
    default_block_frames,
    parse_hostport,
)

EXIT_RUNTIME = 1
EXIT_USAGE = 2


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, then exit 2
        words = self.prog.split()
        where = "rtai -h" if len(words) < 2 else f"rtai {words[-1]} -h"
        self.exit(EXIT_USAGE, f"rtai: error: {message} (see '{where}')\n")


def _add_common(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("audio and media")
    g.add_argument(
        "--input",
        metavar="SPEC",
        help="device (index or name part), sound file, or signal: tone:440, chirp, noise, "
        "speech, silence (default: the default input device)",
    )
    g.add_argument(
        "--output",
        metavar="SPEC",
        help="device (index or name part), sound file to write, or 'null' "
        "(default: the default output device)",
    )
    g.add_argument("--rate", type=int, default=48000, metavar="HZ", help="sample rate (48000)")
    g.add_argument("--channels", type=int, default=1, choices=(1, 2), help="1 or 2 (1)")
    g.add_argument(
        "--frame",
        type=int,
        metavar="N",
        help="samples per packet, 64..960 (480 = 10 ms for opus, 128 for pcm)",
    )
    g.add_argument(
        "--buffer", default="auto", metavar="auto|MS",
        help="jitter buffer: auto adapts to the measured jitter; a number fixes the target "
        "in ms (auto)",
    )  # fmt: skip
    g.add_argument(
        "--buffer-safety", choices=("low", "normal", "high"), default="normal",
        help="auto buffer: how much concealment to allow (2 %%, 0.7 %%, 0.2 %% of the blocks)",
    )  # fmt: skip
    g.add_argument("--buffer-min", type=float, default=0.0, metavar="MS", help="auto: floor (0)")
    g.add_argument(
        "--buffer-max", type=float, default=500.0, metavar="MS", help="auto: ceiling (500)"
    )
    g = p.add_argument_group("codec and protection")
    g.add_argument(
        "--codec",
        default=DEFAULT_CODEC,
        choices=codecs.codec_names(),
        help=f"preferred codec; pcm is always offered as the fallback ({DEFAULT_CODEC})",
    )
    g.add_argument(
        "--bitrate", type=float, default=48, metavar="KBPS", help="Opus and perceptual "
        "bitrate, the ceiling when adapting (48)"
    )  # fmt: skip
    g.add_argument(
        "--fec", choices=("on", "off", "auto"), default="auto",
        help="Opus in-band FEC; auto follows the loss the other side reports (auto)",
    )  # fmt: skip
    g.add_argument("--dtx", action="store_true", help="Opus discontinuous transmission")
    g.add_argument(
        "--application", choices=("voip", "audio", "lowdelay"), default="voip",
        help="Opus tuning: voip (speech, FEC possible), audio (music), lowdelay (CELT only, "
        "no FEC, 2.5 ms less delay) (voip)",
    )  # fmt: skip
    g.add_argument(
        "--complexity", type=int, default=9, choices=range(11), metavar="0..10",
        help="Opus encoder complexity (9)",
    )  # fmt: skip
    g.add_argument("--cbr", action="store_true", help="Opus constant bitrate (default VBR)")
    g.add_argument(
        "--max-bandwidth", choices=("nb", "mb", "wb", "swb", "fb"), default="fb",
        help="widest audio band Opus codes: 4/6/8/12/20 kHz (fb; under loss with FEC the "
        "adaptation caps it at wb)",
    )  # fmt: skip
    g.add_argument(
        "--redundancy", type=int, choices=(0, 1, 2, 3), metavar="N",
        help="carry N earlier blocks in each packet (RFC 2198); default: adapt where FEC "
        "cannot help (pcm, Opus blocks under 10 ms)",
    )  # fmt: skip
    g.add_argument("--no-adapt", action="store_true", help="keep bitrate, FEC and redundancy fixed")
    from rtai import talk

    talk.add_arguments(p)
    g = p.add_argument_group("run")
    g.add_argument("--seconds", type=float, metavar="N", help="stop after N seconds")
    g.add_argument(
        "--stats-json", metavar="FILE", help="append one JSON statistics object per second"
    )
    g.add_argument("-v", "--verbose", action="store_true", help="print statistics every second")
    g.add_argument("-q", "--quiet", action="store_true", help="print only errors")


def _add_security(p: argparse.ArgumentParser, command: str) -> None:
    g = p.add_argument_group(
        "privacy", "calls are encrypted (SRTP AES-GCM) with keys from a one-time code by default"
    ).add_mutually_exclusive_group()
    if command == "call":
        g.add_argument(
            "--code", metavar="CODE",
            help="the code 'rtai listen' printed, e.g. 7-crystal-harbor (asked for when "
            "omitted on a terminal)",
        )  # fmt: skip
    g.add_argument(
        "--passphrase", metavar="TEXT",
        help="a fixed shared passphrase instead of one-time codes (same on both sides)",
    )  # fmt: skip
    g.add_argument(
        "--key-file", metavar="FILE",
        help="like --passphrase, read from FILE (16+ bytes, e.g. from /dev/urandom)",
    )  # fmt: skip
    g.add_argument(
        "--insecure", action="store_true",
        help="plain RTP, no encryption or authentication (both sides; for ffmpeg/GStreamer)",
    )  # fmt: skip


INSECURE_WARNING = (
    "warning: --insecure: audio travels unencrypted and anyone who can reach the port can "
    "listen in or inject sound"
)


def _pairing(args, role: str):
    """The secret for this peer (None with --insecure); may prompt for the code."""
    from rtai.pairing import Pairing

    if args.insecure:
        print(f"rtai: {INSECURE_WARNING}", file=sys.stderr)
        return None
    if args.passphrase is not None:
        return Pairing.from_passphrase(args.passphrase)
    if args.key_file is not None:
        return Pairing.from_key_file(args.key_file)
    if role == "listener":
        return Pairing.issue_codes()
    code = args.code
    if code is None:
        if not sys.stdin.isatty():
            raise ConfigError(
                "this call needs the code 'rtai listen' printed: give --code CODE "
                "(or --passphrase, or --insecure on both sides)"
            )
        code = input("rtai: code printed by 'rtai listen' (e.g. 7-crystal-harbor): ")
    return Pairing.from_code(code)


def _add_protocol(p: argparse.ArgumentParser) -> None:
    # Only "rtai" reaches the parser: main() rewrites "--protocol jacktrip" into
    # "rtai jacktrip -s/-c ..." before parsing (see jacktrip/cli.py).
    p.add_argument("--protocol", choices=("rtai", "jacktrip"), default="rtai",
                   help="rtai (default), or jacktrip: as 'rtai jacktrip -s/-c'")  # fmt: skip


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="rtai", description="rtai: real-time full-duplex audio intercom over RTP/UDP"
    )
    parser.add_argument("--version", action="version", version=f"rtai {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    p = sub.add_parser("listen", help="wait for a caller and talk")
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"UDP port ({DEFAULT_PORT})")
    p.add_argument("--bind", default="0.0.0.0", metavar="HOST", help="address to listen on")
    _add_security(p, "listen")
    _add_protocol(p)
    _add_common(p)
    p.set_defaults(func=cmd_listen)

    p = sub.add_parser("call", help="call a listener and talk")
    p.add_argument("address", metavar="HOST[:PORT]", help=f"listener (port {DEFAULT_PORT})")
    _add_security(p, "call")
    _add_protocol(p)
    _add_common(p)
    p.set_defaults(func=cmd_call)

    p = sub.add_parser("devices", help="list audio devices")
    p.set_defaults(func=cmd_devices)

    p = sub.add_parser("demo", help="two peers through a simulated network, no sound card needed")
    from rtai import demo

    demo.add_arguments(p)
    p.set_defaults(func=demo.run)

    p = sub.add_parser("netsim", help="impairing UDP relay (delay, jitter, loss, reorder...)")
    from rtai.netsim import cli as netsim_cli

    netsim_cli.add_arguments(p)
    p.set_defaults(func=netsim_cli.run)

    from rtai import stream_cli

    p = sub.add_parser("send", help="send plain RTP to ffmpeg, GStreamer, VLC (--insecure)")
    stream_cli.add_send_arguments(p)
    p.set_defaults(func=stream_cli.cmd_send)
    p = sub.add_parser("receive", help="play plain RTP from ffmpeg, GStreamer... (--insecure)")
    stream_cli.add_receive_arguments(p)
    p.set_defaults(func=stream_cli.cmd_receive)
    from rtai.jacktrip import cli as jacktrip_cli

    p = sub.add_parser("jacktrip", help="talk to a JackTrip 1.x peer (jacktrip -s/-c; --insecure)")
    jacktrip_cli.add_arguments(p)
    p.set_defaults(func=jacktrip_cli.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    from rtai.jacktrip.cli import translate_protocol

    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        argv = translate_protocol(argv)
    except ValueError as e:
        _error(str(e))
        return EXIT_USAGE
    args = build_parser().parse_args(argv)
    signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        return 130
    except (ValueError, OSError, RuntimeError) as e:
        _error(str(e).splitlines()[0] if str(e) else type(e).__name__)
        return EXIT_USAGE


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt


def _error(msg: str) -> None:
    print(f"rtai: error: {msg}", file=sys.stderr)


# -- listen / call --------------------------------------------------------------------


def _peer_config(args) -> PeerConfig:
    offered = (args.codec,) if args.codec == "pcm" else (args.codec, "pcm")
    cfg = PeerConfig(
        rate_hz=args.rate,
        channels=args.channels,
        block_frames=args.frame or default_block_frames(args.codec, args.rate),
        codecs=offered,
        buffer_ms=buffer_ms(args.buffer),
        buffer_auto=args.buffer == "auto",
        buffer_safety=args.buffer_safety,
        buffer_min_ms=args.buffer_min,
        buffer_max_ms=args.buffer_max,
        seconds=args.seconds,
        cname=f"rtai@{socket.gethostname()}",
        encoder=EncoderSettings(
            bitrate_bps=int(args.bitrate * 1000),
            dtx=args.dtx,
            complexity=args.complexity,
            vbr=not args.cbr,
            application=args.application,
            max_bandwidth=args.max_bandwidth,
        ),
        fec=args.fec,
        redundancy=args.redundancy,
        adaptive=not args.no_adapt,
    )
    from rtai import talk

    cfg.processing = talk.options_from_args(args)
    cfg.validate()
    return cfg


def _open_endpoint(args, cfg: PeerConfig):
    from rtai.audio.endpoint import open_endpoint

    return open_endpoint(
        args.input, args.output, cfg.rate_hz, cfg.channels, cfg.block_frames, cfg.seconds
    )


def cmd_listen(args) -> int:
    cfg = _peer_config(args)
    pairing = _pairing(args, "listener")
    if not 0 < args.port < 65536:
        raise ConfigError(f"--port {args.port}: use 1..65535")
    try:
        info = socket.getaddrinfo(args.bind, args.port, type=socket.SOCK_DGRAM)[0]
    except socket.gaierror as e:
        raise ConfigError(f"--bind {args.bind}: {e.strerror}") from None
    sock = socket.socket(info[0], socket.SOCK_DGRAM)
    try:
        sock.bind(info[4])
    except OSError as e:
        sock.close()
        raise ConfigError(
            f"cannot listen on UDP port {args.port} ({e.strerror}); is another rtai "
            "listening there? pick another with --port"
        ) from None
    try:
        endpoint = _open_endpoint(args, cfg)
    except Exception:
        sock.close()
        raise
    from rtai.session import Peer

    peer = Peer(cfg, endpoint, sock, remote=None, name="listener", pairing=pairing)
    if not args.quiet:
        print(f"rtai: listening on UDP {args.bind} port {args.port}", file=sys.stderr)
    return run_peer(peer, args)


def cmd_call(args) -> int:
    cfg = _peer_config(args)
    pairing = _pairing(args, "caller")
    host, port = parse_hostport(args.address)
    try:
        info = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)[0]
    except socket.gaierror as e:
        raise ConfigError(f"cannot resolve {host}: {e.strerror}") from None
    sock = socket.socket(info[0], socket.SOCK_DGRAM)
    sock.bind(("::", 0) if info[0] == socket.AF_INET6 else ("0.0.0.0", 0))
    try:
        endpoint = _open_endpoint(args, cfg)
    except Exception:
        sock.close()
        raise
    from rtai.session import Peer

    peer = Peer(cfg, endpoint, sock, remote=info[4], name="caller", pairing=pairing)
    return run_peer(peer, args)


def run_peer(peer, args) -> int:
    """Run a peer until it is done, showing status and writing statistics."""
    from rtai.stats import StatsWriter
    from rtai.status import status_line

    writer = StatsWriter(args.stats_json) if args.stats_json else None
    console = Console(stderr=True)
    live = None
    if console.is_terminal and not args.quiet:
        live = Live(console=console, refresh_per_second=4, transient=True)
    keys = _start_keys(peer, args, console, live is not None)
    try:
        peer.start()
        if live:
            live.start()
        next_tick = time.monotonic() + 1.0
        while not peer.done.wait(0.1):
            _print_events(peer, console, args.quiet)
            if time.monotonic() >= next_tick:
                next_tick += 1.0
                snap = peer.snapshot()
                if writer:
                    writer.write(snap)
                if live:
                    live.update(status_line(snap))
                elif args.verbose:
                    console.print(status_line(snap))
    except KeyboardInterrupt:
        pass
    finally:
        if keys:
            keys.stop()
        if live:
            live.stop()
        peer.stop()
        if writer:
            writer.write(peer.snapshot())
            writer.close()
        _print_events(peer, console, args.quiet)
    return peer.exit_status


def _start_keys(peer, args, console: Console, interactive: bool):
    """Mute and push-to-talk keys while the status line runs on a terminal."""
    from rtai.processing import fallback_warning
    from rtai.talk import KEYS_HELP, KeyReader

    opts = peer.capture.opts
    warning = fallback_warning(opts)
    if warning and not args.quiet:
        console.print(f"rtai: {warning}", style="yellow", highlight=False)
    keys = KeyReader(peer.talk) if interactive else None
    if keys is not None and keys.start():
        console.print(f"rtai: {KEYS_HELP}", highlight=False)
        return keys
    if opts.ptt:
        peer.talk.ptt = False
        console.print(
            "rtai: --ptt needs a terminal for its key; talking all the time", style="yellow"
        )
    return None


def _print_events(peer, console: Console, quiet: bool) -> None:
    for level, text in peer.events():
        if level == "error":
            print(f"rtai: error: {text}", file=sys.stderr)
        elif level == "code":  # the caller cannot get in without it: shown even with -q
            console.print(f"rtai: {text}", style="bold", highlight=False)
        elif not quiet:
            style = "yellow" if level == "warn" else None
            console.print(f"rtai: {text}", style=style, highlight=False)


# -- devices --------------------------------------------------------------------------


def cmd_devices(args) -> int:
    from rtai.audio.device import _sd, no_device_hint

    sd = _sd()
    devices = sd.query_devices()
    if len(devices) == 0:
        print(f"rtai: {no_device_hint()}")
        return 0
    default_in, default_out = sd.default.device
    print(f"{'':2}{'#':>3}  {'name':40} {'host API':28} {'in':>3} {'out':>3} {'rate':>7}")
    for d in devices:
        mark = ("<" if d["index"] == default_in else " ") + (
            ">" if d["index"] == default_out else " "
        )
        api = sd.query_hostapis(d["hostapi"])["name"]
        print(
            f"{mark}{d['index']:>3}  {d['name'][:40]:40} {api[:28]:28} "
            f"{d['max_input_channels']:>3} {d['max_output_channels']:>3} "
            f"{d['default_samplerate']:>7.0f}"
        )
    print("(< default input, > default output)")
    return 0
