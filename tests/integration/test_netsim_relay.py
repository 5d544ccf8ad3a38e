"""Integration tests for the impairing UDP relay and its CLI, over real loopback sockets.

Every socket here is bound to loopback and only sends to loopback. Every sending loop is
bounded in count, every wait in time. Timing assertions are strict on lower bounds (the
relay must never release early) and loose on upper bounds (machines are noisy).
"""

from __future__ import annotations

import argparse
import io
import os
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from rtai.netsim import cli
from rtai.netsim.model import ImpairmentConfig
from rtai.netsim.relay import Relay, RelayError, RelayStats

SRC_DIR = Path(__file__).resolve().parents[2] / "src"
HEADER = struct.Struct("!Id")  # packet index, client send time (monotonic s)


def ipv6_loopback_available() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


LOOPBACKS = [
    pytest.param("127.0.0.1", id="ipv4"),
    pytest.param(
        "::1",
        id="ipv6",
        marks=pytest.mark.skipif(not ipv6_loopback_available(), reason="no IPv6 loopback"),
    ),
]


def udp_socket(host: str) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    sock.bind((host, 0))
    return sock


class Collector:
    """Receives on a socket in a background thread; optionally echoes to the sender."""

    def __init__(self, sock: socket.socket, *, echo: bool = False, max_packets: int = 5000):
        self.sock = sock
        self.echo = echo
        self.max_packets = max_packets
        self.packets: list[tuple[float, bytes, tuple]] = []  # (monotonic s, data, sender)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        self.sock.settimeout(0.02)
        while not self._stop.is_set() and len(self.packets) < self.max_packets:
            try:
                data, sender = self.sock.recvfrom(70_000)
            except TimeoutError:
                continue
            except OSError:
                if self._stop.is_set():
                    return
                continue
            self.packets.append((time.monotonic(), data, sender))
            if self.echo:
                self.sock.sendto(data, sender)

    @property
    def count(self) -> int:
        return len(self.packets)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2.0)
        self.sock.close()


def wait_until(predicate: Callable[[], bool], timeout_s: float = 5.0) -> bool:
    deadline_s = time.monotonic() + timeout_s
    while time.monotonic() < deadline_s:
        if predicate():
            return True
        time.sleep(0.01)
    return predicate()


def packet(index: int, pad_bytes: int = 40) -> bytes:
    return HEADER.pack(index, time.monotonic()) + bytes(pad_bytes)


def index_of(data: bytes) -> int:
    return HEADER.unpack_from(data)[0]


class Path3:
    """client <-> relay <-> echoing server, all on one loopback address."""

    def __init__(self, host: str, config: ImpairmentConfig, **relay_kwargs: object) -> None:
        self.server = Collector(udp_socket(host), echo=True)
        self.relay = Relay((host, 0), self.server.sock.getsockname()[:2], config, **relay_kwargs)
        self.relay.start()
        self.client_sock = udp_socket(host)
        self.client = Collector(self.client_sock)
        self.relay_addr = self.relay.listen_address

    def send(self, n: int, *, interval_s: float = 0.0, pad_bytes: int = 40) -> dict[int, float]:
        sent_s: dict[int, float] = {}
        for i in range(n):
            sent_s[i] = time.monotonic()
            self.client_sock.sendto(packet(i, pad_bytes), self.relay_addr)
            if interval_s:
                time.sleep(interval_s)
        return sent_s

    def settle(self, timeout_s: float = 5.0) -> RelayStats:
        """Wait until the relay is empty and both ends received all it released."""

        def done() -> bool:
            s = self.relay.stats()
            return (
                s.forward_pending == 0
                and s.reverse_pending == 0
                and self.server.count == s.forward.passed - s.send_errors
                and s.reverse.offered == self.server.count
                and self.client.count == s.reverse.passed
            )

        wait_until(done, timeout_s)
        time.sleep(0.05)  # anything late would show up as a mismatch below
        return self.relay.stats()

    def close(self) -> None:
        self.relay.stop()
        self.client.close()
        self.server.close()


@pytest.fixture
def make_path() -> Iterator[Callable[..., Path3]]:
    paths: list[Path3] = []

    def make(host: str, config: ImpairmentConfig | None = None, **kwargs: object) -> Path3:
        p = Path3(host, config or ImpairmentConfig(), **kwargs)
        paths.append(p)
        return p

    yield make
    for p in paths:
        p.close()


# -- relaying ------------------------------------------------------------------------------


@pytest.mark.parametrize("host", LOOPBACKS)
def test_relays_both_directions_unimpaired(make_path: Callable[..., Path3], host: str) -> None:
    path = make_path(host)
    path.send(30, interval_s=0.001)
    stats = path.settle()
    assert [index_of(d) for _, d, _ in path.server.packets] == list(range(30))
    assert [index_of(d) for _, d, _ in path.client.packets] == list(range(30))
    # The server sees the relay's upstream socket; the client sees the relay's listen socket.
    assert {s[:2] for _, _, s in path.server.packets} == {path.relay.upstream_address[:2]}
    assert {s[:2] for _, _, s in path.client.packets} == {path.relay_addr[:2]}
    assert stats.forward.passed == stats.reverse.passed == 30
    assert stats.send_errors == stats.no_client == stats.oversize == 0


@pytest.mark.parametrize("host", LOOPBACKS)
def test_delay_is_added_in_each_direction(make_path: Callable[..., Path3], host: str) -> None:
    delay_s = 0.040
    path = make_path(host, ImpairmentConfig(delay_ms=delay_s * 1000))
    sent_s = path.send(20, interval_s=0.005)
    path.settle()
    assert path.server.count == path.client.count == 20
    one_way_s = [t - sent_s[index_of(d)] for t, d, _ in path.server.packets]
    round_trip_s = [t - sent_s[index_of(d)] for t, d, _ in path.client.packets]
    assert min(one_way_s) >= delay_s - 1e-6  # never early
    assert min(round_trip_s) >= 2 * delay_s - 1e-6
    assert sorted(one_way_s)[10] < delay_s + 0.25  # median, loosely
    assert sorted(round_trip_s)[10] < 2 * delay_s + 0.5


def observed_reordered(indices: list[int]) -> int:
    count, highest, seen = 0, -1, set()
    for i in indices:
        if i in seen:
            continue
        seen.add(i)
        count += i < highest
        highest = max(highest, i)
    return count


def test_counts_received_match_relay_counters(make_path: Callable[..., Path3]) -> None:
    config = ImpairmentConfig(
        delay_ms=5, jitter_ms=3, loss_pct=20, reorder_pct=10, duplicate_pct=10, seed=5
    )
    path = make_path("127.0.0.1", config)
    n = 300
    path.send(n, interval_s=0.001)
    stats = path.settle()

    fwd, rev = stats.forward, stats.reverse
    server_indices = [index_of(d) for _, d, _ in path.server.packets]
    assert fwd.offered == n
    assert fwd.dropped_loss > 0 and fwd.duplicated > 0 and fwd.reordered > 0
    assert len(server_indices) == fwd.passed == n - fwd.dropped_loss + fwd.duplicated
    assert len(server_indices) - len(set(server_indices)) == fwd.duplicated
    assert observed_reordered(server_indices) == fwd.reordered
    # The way back: every echo was offered to the reverse model, with its own seed.
    assert rev.offered == len(server_indices)
    assert path.client.count == rev.passed == rev.offered - rev.dropped_loss + rev.duplicated
    assert stats.send_errors == stats.no_client == 0


def test_directions_are_impaired_independently(make_path: Callable[..., Path3]) -> None:
    path = make_path("127.0.0.1", ImpairmentConfig(loss_pct=30, seed=1))
    path.send(200, interval_s=0.0005)
    stats = path.settle()
    assert stats.forward.dropped_loss > 0 and stats.reverse.dropped_loss > 0
    # With one seed both ways, the reverse model would drop the same positions of its input
    # stream as the forward model dropped of its own.
    fwd_kept = [index_of(d) for _, d, _ in path.server.packets]
    came_back = {index_of(d) for _, d, _ in path.client.packets}
    fwd_lost_positions = set(range(len(fwd_kept))) - set(fwd_kept)
    rev_lost_positions = {pos for pos, i in enumerate(fwd_kept) if i not in came_back}
    assert rev_lost_positions != fwd_lost_positions


def test_rate_limit_spaces_and_tail_drops(make_path: Callable[..., Path3]) -> None:
    tx_s = 200 * 8 / 80_000  # 20 ms per 200-byte datagram at 80 kbit/s
    path = make_path("127.0.0.1", ImpairmentConfig(rate_kbps=80))
    sent_s = path.send(25, pad_bytes=200 - HEADER.size)
    stats = path.settle()
    assert stats.forward.dropped_queue > 0
    assert path.server.count == stats.forward.passed
    last_arrival_s = max(t for t, _, _ in path.server.packets)
    assert last_arrival_s - sent_s[0] >= stats.forward.passed * tx_s - 1e-6
    assert last_arrival_s - sent_s[0] < stats.forward.passed * tx_s + 1.0


# -- robustness and safety -----------------------------------------------------------------


def test_garbage_and_oversized_datagrams_do_not_crash(make_path: Callable[..., Path3]) -> None:
    path = make_path("127.0.0.1", max_datagram_bytes=1500)
    garbage = [b"", b"\xff" * 7, os.urandom(1500), b"x" * 1501, os.urandom(60_000)]
    for data in garbage:
        path.client_sock.sendto(data, path.relay_addr)
    assert wait_until(lambda: path.relay.stats().oversize == 2, 3.0)
    # The server's echoes of the three accepted datagrams came back through the relay.
    path.client_sock.sendto(packet(0), path.relay_addr)
    stats = path.settle()
    assert path.relay.running and path.relay.error is None
    assert stats.forward.passed == 4 and path.server.count == 4
    assert path.client.count == 4
    assert path.server.packets[0][1] == b""


def test_ignores_strangers_on_the_upstream_socket(make_path: Callable[..., Path3]) -> None:
    path = make_path("127.0.0.1")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as stranger:
        stranger.bind(("127.0.0.1", 0))
        for _ in range(5):
            stranger.sendto(b"let me in", path.relay.upstream_address)
    time.sleep(0.1)
    assert path.relay.stats().reverse.offered == 0  # filtered by the connected socket
    assert path.client.count == 0


def test_reply_before_any_client_is_counted_not_sent(make_path: Callable[..., Path3]) -> None:
    path = make_path("127.0.0.1")
    path.server.sock.sendto(b"hello?", path.relay.upstream_address)
    assert wait_until(lambda: path.relay.stats().no_client == 1, 3.0)
    assert path.relay.stats().reverse.passed == 1


def test_replies_go_to_the_last_client(make_path: Callable[..., Path3]) -> None:
    path = make_path("127.0.0.1")
    other = Collector(udp_socket("127.0.0.1"))
    try:
        path.send(1)
        assert wait_until(lambda: path.client.count == 1, 3.0)
        other.sock.sendto(packet(1), path.relay_addr)
        assert wait_until(lambda: other.count == 1, 3.0)
        assert path.client.count == 1
    finally:
        other.close()


# -- lifecycle and setup errors ------------------------------------------------------------


def test_stop_joins_and_releases_the_port() -> None:
    with udp_socket("127.0.0.1") as server:
        relay = Relay(("127.0.0.1", 0), server.getsockname(), ImpairmentConfig(delay_ms=10))
        with relay:
            assert relay.running
            port = relay.listen_address[1]
        assert not relay.running
        relay.stop()  # idempotent
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as again:
            again.bind(("127.0.0.1", port))


def test_run_forever_returns_after_seconds() -> None:
    with udp_socket("127.0.0.1") as server:
        relay = Relay(("127.0.0.1", 0), server.getsockname())
        start_s = time.monotonic()
        relay.run_forever(0.2)
        elapsed_s = time.monotonic() - start_s
        relay.stop()
    assert 0.2 <= elapsed_s < 2.0


def test_busy_port_raises_one_line_relay_error() -> None:
    with udp_socket("127.0.0.1") as busy, udp_socket("127.0.0.1") as server:
        with pytest.raises(RelayError) as info:
            Relay(busy.getsockname(), server.getsockname())
    assert isinstance(info.value, OSError)
    assert "cannot listen" in str(info.value) and "\n" not in str(info.value)


def test_forwarding_to_itself_is_refused() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(RelayError, match="own listen address"):
        Relay(("127.0.0.1", port), ("127.0.0.1", port))


# -- CLI -----------------------------------------------------------------------------------


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="rtai netsim")
    cli.add_arguments(parser)
    return parser.parse_args(argv)


def run_cli(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = cli.run(parse(argv), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


@pytest.mark.parametrize(
    "text, expected",
    [
        ("127.0.0.1:5004", ("127.0.0.1", 5004)),
        ("[::1]:5004", ("::1", 5004)),
        ("localhost:0", ("localhost", 0)),
    ],
)
def test_parse_host_port(text: str, expected: tuple[str, int]) -> None:
    assert cli.parse_host_port(text, "--listen", allow_port_zero=True) == expected


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["--listen", "127.0.0.1:0"],
        ["--listen", "127.0.0.1", "--forward", "127.0.0.1:9"],
        ["--listen", "::1:5004", "--forward", "127.0.0.1:9"],
        ["--listen", "[::1:5004", "--forward", "127.0.0.1:9"],
        ["--listen", "127.0.0.1:0", "--forward", "127.0.0.1:0"],
        ["--listen", "127.0.0.1:70000", "--forward", "127.0.0.1:9"],
        ["--listen", "127.0.0.1:0", "--forward", "127.0.0.1:9", "--delay", "abc"],
        ["--listen", "127.0.0.1:0", "--forward", "127.0.0.1:9", "--loss", "150"],
        ["--listen", "127.0.0.1:0", "--forward", "127.0.0.1:9", "--loss", "90", "--burst", "2"],
        ["--listen", "127.0.0.1:0", "--forward", "127.0.0.1:9", "--jitter", "nan"],
        ["--listen", "127.0.0.1:0", "--forward", "127.0.0.1:9", "--seed", "-3"],
        ["--listen", "127.0.0.1:0", "--forward", "127.0.0.1:9", "--seconds", "0"],
        ["--listen", "no-such-host.invalid:5", "--forward", "127.0.0.1:9"],
    ],
)
def test_cli_bad_input_is_one_line_and_exit_2(argv: list[str]) -> None:
    code, out, err = run_cli(argv)
    assert code == 2
    assert out == ""
    assert err.startswith("rtai netsim: ") and err.count("\n") == 1


def test_cli_busy_port_is_one_line_and_exit_2() -> None:
    with udp_socket("127.0.0.1") as busy:
        port = busy.getsockname()[1]
        code, _, err = run_cli(["--listen", f"127.0.0.1:{port}", "--forward", "127.0.0.1:9"])
    assert code == 2
    assert "cannot listen" in err and err.count("\n") == 1


def free_udp_port(host: str) -> int:
    with udp_socket(host) as probe:
        return probe.getsockname()[1]


def test_cli_relays_for_the_given_seconds_and_prints_summary() -> None:
    server = Collector(udp_socket("127.0.0.1"))
    port = free_udp_port("127.0.0.1")
    forward = f"127.0.0.1:{server.sock.getsockname()[1]}"
    argv = ["--listen", f"127.0.0.1:{port}", "--forward", forward]
    argv += ["--delay", "5", "--seed", "3", "--seconds", "1.0"]
    result: list[tuple[int, str, str]] = []
    runner = threading.Thread(target=lambda: result.append(run_cli(argv)), daemon=True)
    runner.start()
    try:
        with udp_socket("127.0.0.1") as client:
            time.sleep(0.2)  # let the relay bind
            for i in range(5):
                client.sendto(packet(i), ("127.0.0.1", port))
            assert wait_until(lambda: server.count == 5, 3.0)
        runner.join(5.0)
    finally:
        server.close()
    assert not runner.is_alive()
    code, out, err = result[0]
    assert code == 0 and err == ""
    lines = out.splitlines()
    assert lines[0].startswith("rtai netsim: relaying 127.0.0.1:")
    assert len(lines) == 2 and "offered=5 passed=5" in lines[1]


def test_cli_ctrl_c_stops_cleanly_with_summary() -> None:
    code = (
        "import argparse, sys; from rtai.netsim import cli; p = argparse.ArgumentParser(); "
        "cli.add_arguments(p); sys.exit(cli.run(p.parse_args(sys.argv[1:])))"
    )
    env = dict(os.environ, PYTHONPATH=str(SRC_DIR) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.Popen(
        [sys.executable, "-c", code, "--listen", "127.0.0.1:0", "--forward", "127.0.0.1:9"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout is not None
        first_line = proc.stdout.readline()  # printed once the relay is bound and running
        assert first_line.startswith("rtai netsim: relaying"), proc.stderr.read()
        time.sleep(0.1)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert err == ""
    assert out.count("\n") == 1 and "client->server: offered=0" in out
