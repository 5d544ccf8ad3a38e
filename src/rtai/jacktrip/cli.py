"""``rtai jacktrip``: talk to a JackTrip 1.x peer (``jacktrip -s`` / ``jacktrip -c``).

The options mirror JackTrip's: ``-s`` waits for a client on ``--bind-port`` (4464);
``-c HOST`` sends to HOST's ``--peer-port`` (4464) from ``--bind-port``. Rate,
``--frame`` (JackTrip's buffer: the peer's JACK period), ``--bits`` and
``--channels`` must match the peer. JackTrip is unencrypted: ``--insecure`` is required.
"""

from __future__ import annotations

import argparse
import socket
import sys

from rtai.config import ConfigError
from rtai.jacktrip import protocol as jt


def add_arguments(p: argparse.ArgumentParser) -> None:
    mode = p.add_mutually_exclusive_group(required=True)
    mode.add_argument("-s", "--server", action="store_true", help="wait for a JackTrip client")
    mode.add_argument("-c", "--client", metavar="HOST", help="connect to a JackTrip server")
    p.add_argument("--insecure", action="store_true", help="required: JackTrip is unencrypted")
    p.add_argument("--bind", default="0.0.0.0", metavar="HOST", help="local address")
    p.add_argument("-B", "--bind-port", type=int, default=jt.DEFAULT_PORT, metavar="PORT",
                   help=f"local UDP port ({jt.DEFAULT_PORT})")  # fmt: skip
    p.add_argument("-P", "--peer-port", type=int, default=jt.DEFAULT_PORT, metavar="PORT",
                   help=f"the server's UDP port, with -c ({jt.DEFAULT_PORT})")  # fmt: skip
    p.add_argument("--rate", type=int, default=48000, metavar="HZ", help="sample rate (48000)")
    p.add_argument("-n", "--channels", type=int, default=2, metavar="N",
                   help="channels each way, as jacktrip -n (2)")  # fmt: skip
    p.add_argument("-F", "--frame", type=int, default=128, metavar="N",
                   help="frames per packet: the JackTrip peer's JACK period (128)")  # fmt: skip
    p.add_argument("-b", "--bits", type=int, default=16, choices=jt.BITS,
                   help="sample resolution, as jacktrip -b (16)")  # fmt: skip
    p.add_argument("-r", "--redundancy", type=int, default=1, metavar="N",
                   help="packets per datagram, as jacktrip -r (1)")  # fmt: skip
    p.add_argument("--input", metavar="SPEC", help="device, sound file or signal")
    p.add_argument("--output", metavar="SPEC", help="device, sound file to write, or null")
    p.add_argument("--buffer", type=float, default=20.0, metavar="MS",
                   help="jitter buffer target in ms (20)")  # fmt: skip
    p.add_argument("--seconds", type=float, metavar="N", help="stop after N seconds")
    p.add_argument("-q", "--quiet", action="store_true", help="print only errors")


def run(args) -> int:
    from rtai.audio.endpoint import open_endpoint
    from rtai.jacktrip.session import JackTripParams, JackTripPeer
    from rtai.stream_cli import require_insecure, run_until_done

    if args.rate not in jt.RATE_CODES:
        raise ConfigError(
            f"--rate {args.rate}: JackTrip runs at {', '.join(map(str, jt.RATE_CODES))}"
        )
    if not 1 <= args.channels <= 254:
        raise ConfigError(f"--channels {args.channels}: use 1..254")
    if not 16 <= args.frame <= jt.MAX_BUFFER_FRAMES:
        raise ConfigError(f"--frame {args.frame}: use 16..{jt.MAX_BUFFER_FRAMES}")
    if not 1 <= args.redundancy <= 16:
        raise ConfigError(f"--redundancy {args.redundancy}: use 1..16")
    for name in ("bind_port", "peer_port"):
        if not 0 < getattr(args, name) < 65536:
            raise ConfigError(f"--{name.replace('_', '-')} {getattr(args, name)}: use 1..65535")
    if args.buffer < 0:
        raise ConfigError(f"--buffer {args.buffer:g}: use 0 or more ms")
    require_insecure(args, "rtai jacktrip", "JackTrip")
    remote = None
    if args.client:
        try:
            info = socket.getaddrinfo(args.client, args.peer_port, type=socket.SOCK_DGRAM)[0]
        except socket.gaierror as e:
            raise ConfigError(f"cannot resolve {args.client}: {e.strerror}") from None
        family, remote = info[0], info[4]
    else:
        family = socket.AF_INET6 if ":" in args.bind else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_DGRAM)
    try:
        bind = args.bind if family == socket.AF_INET or ":" in args.bind else "::"
        sock.bind((bind, args.bind_port))
    except OSError as e:
        sock.close()
        raise ConfigError(
            f"cannot bind UDP port {args.bind_port} ({e.strerror}); pick another with -B"
        ) from None
    params = JackTripParams(args.rate, args.channels, args.frame, args.bits, args.redundancy)
    try:
        endpoint = open_endpoint(
            args.input, args.output, args.rate, args.channels, args.frame, args.seconds
        )
    except Exception:
        sock.close()
        raise
    peer = JackTripPeer(params, endpoint, sock, remote, args.buffer, args.seconds)
    if not args.quiet:
        where = (
            f"sending to {args.client} port {args.peer_port}"
            if args.client
            else "waiting for a JackTrip client"
        )
        print(
            f"rtai: JackTrip {args.rate} Hz, {args.channels} ch, {args.frame}-frame "
            f"{args.bits}-bit packets on UDP port {args.bind_port}: {where}",
            file=sys.stderr,
        )
    return run_until_done(peer, args.quiet)


def translate_protocol(argv: list[str]) -> list[str]:
    """``rtai call HOST[:PORT] --protocol jacktrip ...`` is ``rtai jacktrip -c HOST -P PORT
    ...``, and ``rtai listen [--port P] --protocol jacktrip ...`` is ``rtai jacktrip -s
    [-B P] ...``. Any other command line comes back unchanged (``--protocol rtai`` is the
    default and is dropped)."""
    if not argv or argv[0] not in ("call", "listen"):
        return argv
    rest = list(argv[1:])
    protocol = None
    for i, a in enumerate(rest):
        if a == "--protocol" and i + 1 < len(rest):
            protocol = rest[i + 1]
            del rest[i : i + 2]
            break
        if a.startswith("--protocol="):
            protocol = a.split("=", 1)[1]
            del rest[i]
            break
    if protocol is None or protocol == "rtai":
        return [argv[0], *rest]
    if protocol != "jacktrip":
        raise ConfigError(f"--protocol {protocol}: use rtai or jacktrip")
    if argv[0] == "listen":
        out = ["jacktrip", "-s"]
        for i, a in enumerate(rest):
            if a == "--port":
                rest[i] = "--bind-port"
            elif a.startswith("--port="):
                rest[i] = "--bind-port=" + a.split("=", 1)[1]
        return out + rest
    positional = [i for i, a in enumerate(rest) if not a.startswith("-")]
    if not positional:
        raise ConfigError("call --protocol jacktrip: give the JackTrip server's HOST[:PORT]")
    address = rest.pop(positional[0])
    if address.startswith("["):  # [v6]:port or [v6]
        host, _, tail = address[1:].partition("]")
        port = tail[1:] if tail.startswith(":") else ""
    elif address.count(":") == 1:
        host, port = address.split(":")
    else:  # a name, IPv4, or a bare IPv6 address
        host, port = address, ""
    out = ["jacktrip", "-c", host]
    if port:
        out += ["--peer-port", port]
    return out + rest
