"""``rtai netsim``: run an impairing UDP relay from the command line.

Example: put 40 ms +- jitter and 5 % bursty loss between a peer and a server::

    rtai netsim --listen 127.0.0.1:6000 --forward 127.0.0.1:5004 \\
        --delay 40 --jitter 10 --loss 5 --burst 3 --seconds 60

Peers send to the ``--listen`` address; the relay forwards to ``--forward`` and relays the
replies back. Both directions get the same impairments with independent random streams
(seed and seed + 1). On exit (after ``--seconds`` or Ctrl-C) one summary line of counters
is printed. Bad input or a busy port gives a one-line error on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import math
import sys
from typing import TextIO

from rtai.config import ConfigError as AddressError
from rtai.config import parse_hostport
from rtai.netsim.model import ConfigError, ImpairmentConfig
from rtai.netsim.relay import Relay, format_address

EXIT_OK = 0
EXIT_USAGE = 2

# config field -> (option, metavar, help); the option's name is its attribute on args
_IMPAIRMENT_OPTIONS: dict[str, tuple[str, str, str]] = {
    "delay_ms": ("--delay", "MS", "fixed one-way delay added to each packet, ms (default 0)"),
    "jitter_ms": (
        "--jitter",
        "MS",
        "extra random delay |N(0, MS)|, ms; never reorders (default 0)",
    ),
    "loss_pct": ("--loss", "PCT", "long-run packet loss, percent (default 0)"),
    "burst_packets": (
        "--burst",
        "MEAN_PACKETS",
        "mean loss-burst length; > 1 selects Gilbert-Elliott bursty loss (default 0: random)",
    ),
    "reorder_pct": (
        "--reorder",
        "PCT",
        "packets held back behind the next one, percent (default 0)",
    ),
    "duplicate_pct": ("--duplicate", "PCT", "packets delivered twice, percent (default 0)"),
    "rate_kbps": (
        "--rate",
        "KBPS",
        "link rate in kbit/s with a 200 ms queue (default 0: no limit)",
    ),
}


class UsageError(ValueError):
    """Bad command-line input; the message is one line."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``netsim`` options to ``parser``. Values are checked in :func:`run`."""
    parser.add_argument(
        "--listen", metavar="HOST:PORT", help="address peers send to, e.g. 127.0.0.1:6000"
    )
    parser.add_argument(
        "--forward",
        metavar="HOST:PORT",
        help="address to relay to, e.g. 127.0.0.1:5004 or [::1]:5004",
    )
    for option, metavar, help_text in _IMPAIRMENT_OPTIONS.values():
        parser.add_argument(option, dest=option.lstrip("-"), metavar=metavar, help=help_text)
    parser.add_argument("--seed", metavar="N", help="random seed, integer >= 0 (default 0)")
    parser.add_argument(
        "--seconds", metavar="N", help="stop after N seconds (default: run until Ctrl-C)"
    )


def parse_host_port(text: str | None, option: str, *, allow_port_zero: bool = False) -> tuple:
    """Parse ``HOST:PORT`` or ``[IPV6]:PORT`` into ``(host, port)``; raise UsageError."""
    try:
        return parse_hostport(text, None, option, allow_port_zero)
    except AddressError as e:
        raise UsageError(str(e)) from None


def _parse_float(text: object, option: str) -> float:
    try:
        value = float(str(text))
    except ValueError:
        raise UsageError(f"{option} must be a number, got {text!r}") from None
    if not math.isfinite(value):
        raise UsageError(f"{option} must be a finite number, got {text!r}")
    return value


def config_from_args(args: argparse.Namespace) -> ImpairmentConfig:
    """Build and validate the impairment config; raise UsageError naming the option."""
    values: dict[str, float | int] = {}
    for field, (option, _, _) in _IMPAIRMENT_OPTIONS.items():
        raw = getattr(args, option.lstrip("-"), None)
        if raw is not None:
            values[field] = _parse_float(raw, option)
    raw_seed = getattr(args, "seed", None)
    if raw_seed is not None:
        try:
            values["seed"] = int(str(raw_seed), 10)
        except ValueError:
            raise UsageError(f"--seed must be an integer >= 0, got {raw_seed!r}") from None
    config = ImpairmentConfig(**values)  # type: ignore[arg-type]
    try:
        config.validate()
    except ConfigError as exc:
        option = _IMPAIRMENT_OPTIONS.get(exc.field, (f"--{exc.field}",))[0]
        raise UsageError(f"{option}: {exc}") from None
    return config


def _describe(config: ImpairmentConfig) -> str:
    parts = [
        f"delay {config.delay_ms:g} ms",
        f"jitter {config.jitter_ms:g} ms",
        f"loss {config.loss_pct:g} %"
        + (f" (bursts ~{config.burst_packets:g})" if config.bursty else ""),
        f"reorder {config.reorder_pct:g} %",
        f"duplicate {config.duplicate_pct:g} %",
        f"rate {config.rate_kbps:g} kbit/s" if config.rate_kbps > 0 else "rate unlimited",
        f"seed {config.seed}",
    ]
    return ", ".join(parts)


def run(args: argparse.Namespace, *, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Run the relay described by ``args``; return the process exit status."""
    out = out if out is not None else sys.stdout
    err = err if err is not None else sys.stderr
    try:
        listen = parse_host_port(getattr(args, "listen", None), "--listen", allow_port_zero=True)
        forward = parse_host_port(getattr(args, "forward", None), "--forward")
        config = config_from_args(args)
        raw_seconds = getattr(args, "seconds", None)
        seconds = None if raw_seconds is None else _parse_float(raw_seconds, "--seconds")
        if seconds is not None and seconds <= 0:
            raise UsageError(f"--seconds must be > 0, got {raw_seconds!r}")
    except UsageError as exc:
        print(f"rtai netsim: {exc}", file=err)
        return EXIT_USAGE

    try:
        relay = Relay(listen, forward, config)
    except (OSError, ValueError) as exc:
        print(f"rtai netsim: {exc}", file=err)
        return EXIT_USAGE

    try:
        print(
            f"rtai netsim: relaying {format_address(relay.listen_address)} <-> "
            f"{format_address(relay.forward_address)} ({_describe(config)}); Ctrl-C to stop",
            file=out,
            flush=True,
        )
        relay.run_forever(seconds)
    except KeyboardInterrupt:
        pass
    finally:
        relay.stop()
    print(f"rtai netsim: {relay.stats().summary()}", file=out, flush=True)
    return EXIT_OK
