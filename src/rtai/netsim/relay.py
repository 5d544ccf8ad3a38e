"""Bidirectional impairing UDP relay: the socket edge around :mod:`rtai.netsim.model`.

::

    client ──► [listen socket] ──(forward model)──► [upstream socket] ──► forward address
    client ◄── [listen socket] ◄──(reverse model)── [upstream socket] ◄── forward address

The relay binds ``listen``. A datagram a client sends there goes through the forward
:class:`~rtai.netsim.model.Impairment` and leaves, when due, from a second "upstream"
socket connected to ``forward`` (bound to an ephemeral port of forward's address family).
Datagrams that come back to the upstream socket go through the reverse model (same
impairments, seed + 1 unless a separate config is given) and are sent to the last client
address seen on the listen socket.

Safety: the relay only ever sends to the configured forward address (the upstream socket
is ``connect()``-ed, so the kernel also discards datagrams from anyone else) and to the
client that last sent to it. It never crashes on what it receives: oversized datagrams
are counted and dropped, socket errors are counted, and memory is bounded by the models'
pending caps.

Threading: a single loop (``start()`` runs it on a daemon thread, ``run_forever()`` in the
calling thread) waits with ``selectors`` until a socket is readable or the next release
is due on ``time.monotonic()``. Release times are honoured to within the selector's
resolution (about 1 ms with epoll), never early.
"""

from __future__ import annotations

import ipaddress
import selectors
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType

from rtai.netsim.model import (
    DEFAULT_MAX_PENDING_BYTES,
    DEFAULT_MAX_PENDING_PACKETS,
    Impairment,
    ImpairmentConfig,
    ImpairmentCounters,
)

Address = tuple[str, int]

MAX_UDP_PAYLOAD_BYTES = 65535
_RECV_BATCH = 256  # datagrams read per readiness event before servicing releases
_MAX_WAIT_S = 0.5  # longest select() wait, a backstop for the wake-up socket
_SOCKET_BUFFER_BYTES = 1 << 20


class RelayError(OSError):
    """The relay could not be set up (resolve, bind, connect); the message is one line."""


@dataclass(frozen=True, slots=True)
class RelayStats:
    """A snapshot of both directions' model counters plus the relay's own counters.

    ``forward`` is client -> forward address, ``reverse`` the way back. A datagram counted
    in a model's ``passed`` was handed to a socket; ``send_errors`` and ``no_client`` count
    those the relay could not deliver, so delivered = passed - send_errors - no_client.
    """

    forward: ImpairmentCounters
    reverse: ImpairmentCounters
    forward_pending: int
    reverse_pending: int
    oversize: int
    recv_errors: int
    send_errors: int
    no_client: int

    def summary(self) -> str:
        """One line for the CLI."""

        def side(name: str, c: ImpairmentCounters) -> str:
            return (
                f"{name}: offered={c.offered} passed={c.passed} lost={c.dropped_loss} "
                f"queue_drop={c.dropped_queue} overflow={c.dropped_overflow} "
                f"dup={c.duplicated} reordered={c.reordered}"
            )

        return (
            f"{side('client->server', self.forward)}; {side('server->client', self.reverse)}; "
            f"oversize={self.oversize} recv_errors={self.recv_errors} "
            f"send_errors={self.send_errors} no_client={self.no_client}"
        )


def format_address(address: tuple[object, ...]) -> str:
    """``host:port``, with IPv6 hosts in brackets (``[::1]:5004``)."""
    host, port = str(address[0]), address[1]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _resolve(what: str, address: Address, *, passive: bool) -> tuple[int, tuple]:
    host, port = address
    flags = socket.AI_PASSIVE if passive else 0
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM, flags=flags)
    except (OSError, UnicodeError) as exc:
        raise RelayError(f"cannot resolve {what} address {host!r}: {exc}") from exc
    if not infos:
        raise RelayError(f"cannot resolve {what} address {host!r}")
    family, _, _, _, sockaddr = infos[0]
    return family, sockaddr


def _is_wildcard(host: str) -> bool:
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_unspecified
    except ValueError:
        return False


def _enlarge_buffers(sock: socket.socket) -> None:
    for option in (socket.SO_RCVBUF, socket.SO_SNDBUF):
        try:
            sock.setsockopt(socket.SOL_SOCKET, option, _SOCKET_BUFFER_BYTES)
        except OSError:
            pass  # best effort: the kernel may cap it


class Relay:
    """An impairing UDP relay between one listen address and one forward address.

    Args:
        listen: (host, port) to bind; port 0 picks a free port (see ``listen_address``).
        forward: (host, port) of the far end; the only destination besides the client.
        config: impairments for client -> forward.
        reverse_config: impairments for forward -> client; default
            ``config.reverse_direction()`` (same settings, seed + 1).
        max_datagram_bytes: larger received datagrams are dropped and counted (oversize).
        max_pending_packets, max_pending_bytes: memory cap of each direction's model.
        tap: called on the relay thread as ``tap(direction, datagram)`` for every datagram
            delivered ("forward" or "reverse"), so tests can tally exactly what got through.

    Sockets are bound in the constructor, so a busy port raises :class:`RelayError`
    (an OSError) here. ``start()``/``stop()`` or ``with Relay(...) as relay:`` run the loop
    on a thread; ``run_forever()`` runs it in the caller's thread.
    """

    def __init__(
        self,
        listen: Address,
        forward: Address,
        config: ImpairmentConfig | None = None,
        *,
        reverse_config: ImpairmentConfig | None = None,
        max_datagram_bytes: int = MAX_UDP_PAYLOAD_BYTES,
        max_pending_packets: int = DEFAULT_MAX_PENDING_PACKETS,
        max_pending_bytes: int = DEFAULT_MAX_PENDING_BYTES,
        tap: Callable[[str, bytes], None] | None = None,
    ) -> None:
        config = config if config is not None else ImpairmentConfig()
        reverse_config = (
            reverse_config if reverse_config is not None else config.reverse_direction()
        )
        if not 1 <= max_datagram_bytes <= MAX_UDP_PAYLOAD_BYTES:
            raise ValueError(f"max_datagram_bytes must be 1..{MAX_UDP_PAYLOAD_BYTES}")
        caps = {"max_pending_packets": max_pending_packets, "max_pending_bytes": max_pending_bytes}
        self._forward_model: Impairment[bytes] = Impairment(config, **caps)
        self._reverse_model: Impairment[bytes] = Impairment(reverse_config, **caps)
        self._max_datagram_bytes = max_datagram_bytes
        self._tap = tap

        listen_family, listen_sockaddr = _resolve("listen", listen, passive=True)
        forward_family, forward_sockaddr = _resolve("forward", forward, passive=False)
        self._forward_sockaddr = forward_sockaddr

        self._listen_sock: socket.socket | None = None
        self._upstream_sock: socket.socket | None = None
        self._wake_r: socket.socket | None = None
        self._wake_w: socket.socket | None = None
        try:
            self._listen_sock = socket.socket(listen_family, socket.SOCK_DGRAM)
            try:
                self._listen_sock.bind(listen_sockaddr)
            except OSError as exc:
                reason = exc.strerror or str(exc)
                raise RelayError(
                    f"cannot listen on {format_address(listen)}: {reason} "
                    "(choose another port or stop the program using it)"
                ) from exc
            self._listen_sock.setblocking(False)
            _enlarge_buffers(self._listen_sock)
            self._check_not_self(listen_sockaddr, forward_sockaddr)

            self._upstream_sock = socket.socket(forward_family, socket.SOCK_DGRAM)
            try:
                self._upstream_sock.connect(forward_sockaddr)
            except OSError as exc:
                reason = exc.strerror or str(exc)
                raise RelayError(
                    f"cannot reach forward address {format_address(forward)}: {reason}"
                ) from exc
            self._upstream_sock.setblocking(False)
            _enlarge_buffers(self._upstream_sock)

            self._wake_r, self._wake_w = socket.socketpair()
            self._wake_r.setblocking(False)
            self._wake_w.setblocking(False)
        except BaseException:
            self._close_sockets()
            raise

        self._selector = selectors.DefaultSelector()
        self._selector.register(self._listen_sock, selectors.EVENT_READ, "listen")
        self._selector.register(self._upstream_sock, selectors.EVENT_READ, "upstream")
        self._selector.register(self._wake_r, selectors.EVENT_READ, "wake")

        self._client: tuple | None = None
        self._lock = threading.Lock()  # guards the models and counters against stats()
        self._stop_event = threading.Event()
        self._idle = threading.Event()
        self._idle.set()
        self._thread: threading.Thread | None = None
        self._closed = False
        self._oversize = 0
        self._recv_errors = 0
        self._send_errors = 0
        self._no_client = 0
        self.error: BaseException | None = None  # set if the loop thread died unexpectedly

    def _check_not_self(self, listen_sockaddr: tuple, forward_sockaddr: tuple) -> None:
        assert self._listen_sock is not None
        bound = self._listen_sock.getsockname()
        same_port = bound[1] == forward_sockaddr[1]
        same_host = bound[0] == forward_sockaddr[0] or _is_wildcard(str(listen_sockaddr[0]))
        if same_port and same_host:
            raise RelayError(
                f"forward address {format_address(forward_sockaddr)} is the relay's own "
                "listen address; point it at the far end"
            )

    # -- addresses -----------------------------------------------------------------------

    @property
    def listen_address(self) -> tuple:
        """The bound listen socket address (host, port[, flowinfo, scope_id])."""
        assert self._listen_sock is not None
        return self._listen_sock.getsockname()

    @property
    def upstream_address(self) -> tuple:
        """The local address of the socket that talks to the forward address."""
        assert self._upstream_sock is not None
        return self._upstream_sock.getsockname()

    @property
    def forward_address(self) -> tuple:
        return self._forward_sockaddr

    # -- lifecycle -----------------------------------------------------------------------

    def start(self) -> Relay:
        """Run the relay loop on a daemon thread; returns self."""
        if self._closed:
            raise RuntimeError("relay is closed; create a new one")
        if self._thread is not None or not self._idle.is_set():
            raise RuntimeError("relay is already running")
        self._thread = threading.Thread(target=self._thread_main, name="rtai-netsim", daemon=True)
        self._idle.clear()
        self._thread.start()
        return self

    def run_forever(self, seconds: float | None = None) -> None:
        """Run the loop in the calling thread for ``seconds`` (None: until ``stop()``).

        KeyboardInterrupt propagates; call ``stop()`` (or ``close()``) afterwards.
        """
        if self._closed:
            raise RuntimeError("relay is closed; create a new one")
        if self._thread is not None or not self._idle.is_set():
            raise RuntimeError("relay is already running")
        deadline_s = None if seconds is None else time.monotonic() + max(0.0, seconds)
        self._idle.clear()
        try:
            self._loop(deadline_s)
        finally:
            self._idle.set()

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stop the loop (waiting for it to end), then close the sockets. Idempotent."""
        self._stop_event.set()
        self._wake()
        if self._thread is not None:
            if self._thread is not threading.current_thread():
                self._thread.join(timeout_s)
        else:
            self._idle.wait(timeout_s)
        self.close()

    def close(self) -> None:
        """Close the sockets. Pending datagrams are discarded (still counted as pending)."""
        if self._closed:
            return
        self._closed = True
        try:
            self._selector.close()
        except Exception:  # noqa: BLE001 - closing must not fail
            pass
        self._close_sockets()

    def _close_sockets(self) -> None:
        for sock in (self._listen_sock, self._upstream_sock, self._wake_r, self._wake_w):
            if sock is not None:
                sock.close()

    def __enter__(self) -> Relay:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return not self._idle.is_set()

    def stats(self) -> RelayStats:
        """A consistent snapshot of every counter; safe to call from any thread."""
        with self._lock:
            return RelayStats(
                forward=self._forward_model.counters.copy(),
                reverse=self._reverse_model.counters.copy(),
                forward_pending=self._forward_model.pending,
                reverse_pending=self._reverse_model.pending,
                oversize=self._oversize,
                recv_errors=self._recv_errors,
                send_errors=self._send_errors,
                no_client=self._no_client,
            )

    # -- the loop ------------------------------------------------------------------------

    def _wake(self) -> None:
        if self._wake_w is not None and not self._closed:
            try:
                self._wake_w.send(b"\0")
            except OSError:
                pass  # buffer full means a wake-up is already pending

    def _thread_main(self) -> None:
        try:
            self._loop(None)
        except BaseException as exc:  # noqa: BLE001 - keep it for the owner to inspect
            self.error = exc
        finally:
            self._idle.set()

    def _loop(self, deadline_s: float | None) -> None:
        while not self._stop_event.is_set():
            now_s = time.monotonic()
            if deadline_s is not None and now_s >= deadline_s:
                return
            events = self._selector.select(self._wait_s(now_s, deadline_s))
            for key, _ in events:
                if key.data == "listen":
                    self._receive(self._listen_sock, self._forward_model, from_client=True)
                elif key.data == "upstream":
                    self._receive(self._upstream_sock, self._reverse_model, from_client=False)
                else:
                    self._drain_wake()
            self._send_due(time.monotonic())

    def _wait_s(self, now_s: float, deadline_s: float | None) -> float:
        wait_s = _MAX_WAIT_S
        with self._lock:
            for model in (self._forward_model, self._reverse_model):
                release_s = model.next_release_s()
                if release_s is not None:
                    wait_s = min(wait_s, release_s - now_s)
        if deadline_s is not None:
            wait_s = min(wait_s, deadline_s - now_s)
        return max(0.0, wait_s)

    def _drain_wake(self) -> None:
        assert self._wake_r is not None
        try:
            while self._wake_r.recv(4096):
                pass
        except OSError:
            pass

    def _receive(
        self, sock: socket.socket | None, model: Impairment[bytes], *, from_client: bool
    ) -> None:
        assert sock is not None
        bufsize = self._max_datagram_bytes + 1  # one spare byte detects oversize
        for _ in range(_RECV_BATCH):
            try:
                data, sender = sock.recvfrom(bufsize)
            except BlockingIOError:
                return
            except OSError:
                # e.g. ECONNREFUSED reported after an ICMP port-unreachable: keep going.
                with self._lock:
                    self._recv_errors += 1
                continue
            now_s = time.monotonic()
            with self._lock:
                if len(data) > self._max_datagram_bytes:
                    self._oversize += 1
                    continue
                if from_client:
                    self._client = sender
                model.push(now_s, data, len(data))

    def _send_due(self, now_s: float) -> None:
        with self._lock:
            to_server = self._forward_model.pop_due(now_s)
            to_client = self._reverse_model.pop_due(now_s)
            client = self._client
        send_errors = 0
        no_client = 0
        upstream, listen = self._upstream_sock, self._listen_sock
        assert upstream is not None and listen is not None
        tap = self._tap
        for released in to_server:
            try:
                upstream.send(released.item)
                if tap is not None:
                    tap("forward", released.item)
            except OSError:
                send_errors += 1
        for released in to_client:
            if client is None:
                no_client += 1
                continue
            try:
                listen.sendto(released.item, client)
                if tap is not None:
                    tap("reverse", released.item)
            except OSError:
                send_errors += 1
        if send_errors or no_client:
            with self._lock:
                self._send_errors += send_errors
                self._no_client += no_client
