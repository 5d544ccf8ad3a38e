"""Helpers to run two real peers in one process over loopback UDP."""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass

import numpy as np
import pytest

from rtai.audio.clocked import ClockedEndpoint
from rtai.audio.files import ArraySink
from rtai.audio.signals import ArraySource
from rtai.config import PeerConfig
from rtai.pairing import Pairing
from rtai.session import Peer

RATE = 48000


@dataclass
class Pair:
    listener: Peer
    caller: Peer
    listener_sink: ArraySink
    caller_sink: ArraySink
    listener_sock: socket.socket

    def wait(self, timeout_s: float) -> None:
        """Wait for the caller to finish (bounded), then stop both."""
        assert self.caller.done.wait(timeout_s), "the call did not end in time"
        self.stop()

    def stop(self) -> None:
        self.caller.stop()
        time.sleep(0.05)
        self.listener.stop()


def make_udp(host: str = "127.0.0.1") -> socket.socket:
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_DGRAM)
    s.bind((host, 0))
    return s


def clocked(signal: np.ndarray, cfg: PeerConfig) -> tuple[ClockedEndpoint, ArraySink]:
    sink = ArraySink(cfg.rate_hz, cfg.channels)
    src = ArraySource(signal, cfg.rate_hz)
    return ClockedEndpoint(src, sink, cfg.rate_hz, cfg.channels, cfg.block_frames), sink


@pytest.fixture
def start_pair():
    pairs: list[Pair] = []

    def _start(
        listener_signal: np.ndarray,
        caller_signal: np.ndarray,
        cfg_l: PeerConfig | None = None,
        cfg_c: PeerConfig | None = None,
        via: tuple | None = None,
        host: str = "127.0.0.1",
        listener_sock: socket.socket | None = None,
        insecure: bool = False,
        code: str | None = None,
    ) -> Pair:
        """Encrypted by default: the listener issues a one-time code and the caller
        is given it (or ``code``); ``insecure`` runs plain RTP on both sides."""
        pairing_l = None if insecure else Pairing.issue_codes()
        cfg_l = cfg_l or PeerConfig(buffer_ms=40)
        cfg_c = cfg_c or PeerConfig(buffer_ms=40)
        ep_l, sink_l = clocked(listener_signal, cfg_l)
        ep_c, sink_c = clocked(caller_signal, cfg_c)
        ls = listener_sock or make_udp(host)
        listener = Peer(cfg_l, ep_l, ls, None, name="listener", pairing=pairing_l)
        target = via(ls.getsockname()) if via else ls.getsockname()
        pairing_c = None if insecure else Pairing.from_code(code or pairing_l.code)
        caller = Peer(cfg_c, ep_c, make_udp(host), target, name="caller", pairing=pairing_c)
        listener.start()
        caller.start()
        pair = Pair(listener, caller, sink_l, sink_c, ls)
        pairs.append(pair)
        return pair

    yield _start
    for p in pairs:
        p.stop()
