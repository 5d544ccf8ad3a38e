"""The security side of a call, pure (sans-I/O): handshake guards and the media guard.

:class:`CallerGuard` and :class:`ListenerGuard` run the key exchange of
:mod:`rtai.pairing` through the handshake messages (HELLO/ACCEPT/CONFIRM); the
listener's guard also rate-limits exchanges, keeps at most a few half-open
exchanges, and counts wrong codes. :class:`CallGuard` belongs to one established
call: it seals what the call sends and opens what it receives (SRTP/SRTCP, one key
per direction), and counts what it refused. The session (:mod:`rtai.session`) wires
them to the socket; docs/security.md describes the protocol.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from rtai.handshake import Accept, Confirm, Hello, Reject, encode_message
from rtai.pairing import (
    CONFIRM_BYTES,
    INSECURE,
    MAX_WRONG_CODES,
    PAKE_MESSAGE_BYTES,
    SECURE,
    AttemptLimiter,
    CallerExchange,
    CallKeys,
    Pairing,
    PairingError,
    confirm_mac,
    confirm_ok,
    decode_hex,
    derive_call_keys,
    listener_exchange,
    transcript_hash,
)
from rtai.rtp.srtp import SrtpError, SrtpKeys, SrtpReceiver, SrtpSender

PENDING_TIMEOUT_S = 5.0  # a half-open exchange without CONFIRM counts as a wrong attempt
MAX_PENDING = 4

WRONG_CODE = "wrong code"


@dataclass
class GuardCounters:
    """Packets a call refused for security reasons (all dropped before parsing)."""

    auth_failed: int = 0  # SRTP/SRTCP tag did not verify
    replayed: int = 0  # already seen, or older than the replay window
    foreign: int = 0  # from an address other than the call's peer


class CallGuard:
    """Seals and opens one call's packets; plain pass-through for an --insecure call."""

    def __init__(self, keys: tuple[SrtpKeys, SrtpKeys] | None = None, remote_ssrc: int = 0) -> None:
        self.counters = GuardCounters()
        self.authenticated = False  # an authentic packet arrived from the peer
        if keys is None:
            self.tx = self.rx = None
        else:
            self.tx = SrtpSender(keys[0])
            self.rx = SrtpReceiver(keys[1], remote_ssrc)

    @property
    def secure(self) -> bool:
        return self.tx is not None

    def seal_rtp(self, data: bytes) -> bytes:
        return data if self.tx is None else self.tx.protect_rtp(data)

    def seal_rtcp(self, data: bytes) -> bytes:
        return data if self.tx is None else self.tx.protect_rtcp(data)

    def open(self, data: bytes, is_rtcp: bool) -> bytes:
        """The plain packet, or :class:`rtai.rtp.srtp.SrtpError` (``kind`` says why)."""
        if self.rx is None:
            return data
        plain = self.rx.unprotect_rtcp(data) if is_rtcp else self.rx.unprotect_rtp(data)
        self.authenticated = True
        return plain


def security_refusal(caller_mode: str, listener_mode: str) -> str | None:
    """The REJECT reason when the two sides disagree on encryption, else None."""
    if caller_mode == listener_mode:
        return None
    if listener_mode == INSECURE:
        return (
            "the listener runs with --insecure (plain RTP); add --insecure to the call, "
            "or restart the listener without it"
        )
    if caller_mode == INSECURE:
        return (
            "the listener requires encryption; call without --insecure and give the code "
            "it printed (--code)"
        )
    return f"unknown security mode {caller_mode[:40]!r}; update rtai on both sides"


def _accept_wire(accept: Accept) -> bytes:
    return encode_message(replace(accept, confirm=""))


class CallerGuard:
    """The caller's side of one exchange."""

    def __init__(self, pairing: Pairing) -> None:
        self.pairing = pairing
        self._exchange = CallerExchange(pairing.password)

    def hello_fields(self) -> dict:
        return {"security": SECURE, "pake": self._exchange.message.hex()}

    def finish(self, hello: Hello, accept: Accept) -> tuple[CallKeys, Confirm]:
        """Keys and the CONFIRM to send, or :class:`PairingError` (wrong code or a
        broken answer)."""
        if not accept.pake or not accept.confirm:
            raise PairingError("the listener did not run the key exchange (an older rtai?)")
        peer_msg = decode_hex(accept.pake, PAKE_MESSAGE_BYTES, "key-exchange message")
        shared = self._exchange.finish(peer_msg)
        th = transcript_hash(encode_message(hello), _accept_wire(accept))
        keys = derive_call_keys(shared, th)
        if len(accept.confirm) != 2 * CONFIRM_BYTES or not confirm_ok(
            keys.listener_confirm_key, "listener", th, accept.confirm
        ):
            raise PairingError(WRONG_CODE)
        return keys, Confirm(hello.session, confirm_mac(keys.caller_confirm_key, "caller", th))


@dataclass
class Pending:
    """A listener's half-open exchange: ACCEPT sent, CONFIRM awaited."""

    hello: Hello
    addr: tuple
    accept: Accept
    keys: CallKeys
    transcript: bytes
    created_s: float


@dataclass
class Outcome:
    """What the session should do after the guard looked at a message."""

    send: Accept | Reject | None = None
    established: Pending | None = None
    events: list[tuple[str, str]] = field(default_factory=list)


class ListenerGuard:
    """The listener's side: answers HELLOs with the exchange, checks CONFIRMs."""

    def __init__(self, pairing: Pairing, limiter: AttemptLimiter | None = None) -> None:
        self.pairing = pairing
        self.limiter = limiter or AttemptLimiter()
        self.pending: dict[str, Pending] = {}
        self.wrong_codes = 0
        self.bad_exchanges = 0

    def on_hello(self, hello: Hello, accept: Accept, addr: tuple, now_s: float) -> Outcome:
        """``accept`` is what negotiation agreed; returns it completed with the exchange,
        or nothing when the attempt is over the rate limit."""
        p = self.pending.get(hello.session)
        if p is not None:
            if p.addr[:2] == addr[:2] and p.hello == hello:
                return Outcome(send=p.accept)  # our ACCEPT was lost: the same one again
            return Outcome()
        if not self.limiter.allow(str(addr[0]), now_s):
            return Outcome()
        try:
            peer_msg = decode_hex(hello.pake, PAKE_MESSAGE_BYTES, "key-exchange message")
            my_msg, shared = listener_exchange(self.pairing.password, peer_msg)
        except PairingError as e:
            self.bad_exchanges += 1
            return Outcome(send=Reject(hello.session, f"key exchange failed: {e}"))
        accept = replace(accept, pake=my_msg.hex(), confirm="")
        th = transcript_hash(encode_message(hello), _accept_wire(accept))
        keys = derive_call_keys(shared, th)
        accept = replace(accept, confirm=confirm_mac(keys.listener_confirm_key, "listener", th))
        if len(self.pending) >= MAX_PENDING:
            oldest = min(self.pending.values(), key=lambda q: q.created_s)
            del self.pending[oldest.hello.session]
        self.pending[hello.session] = Pending(hello, addr, accept, keys, th, now_s)
        return Outcome(send=accept)

    def on_confirm(self, msg: Confirm, addr: tuple) -> Outcome:
        p = self.pending.get(msg.session)
        if p is None or p.addr[:2] != addr[:2]:
            return Outcome()
        del self.pending[msg.session]
        if confirm_ok(p.keys.caller_confirm_key, "caller", p.transcript, msg.confirm):
            return self._established(p)
        return self._wrong(p, Reject(msg.session, f"{WRONG_CODE}: the codes do not match"))

    def on_media(self, data: bytes, addr: tuple, is_rtcp: bool) -> Outcome:
        """SRTP or SRTCP from a caller whose CONFIRM was lost: an authentic packet
        under the exchange's keys confirms them just as well."""
        for p in self.pending.values():
            if p.addr[:2] == addr[:2]:
                probe = SrtpReceiver(p.keys.caller_to_listener, p.hello.ssrc)
                try:
                    probe.unprotect_rtcp(data) if is_rtcp else probe.unprotect_rtp(data)
                except SrtpError:
                    return Outcome()
                del self.pending[p.hello.session]
                return self._established(p)
        return Outcome()

    def _established(self, p: Pending) -> Outcome:
        out = Outcome(established=p)
        new = self.pairing.call_made()
        if new is not None:
            out.events.append(("code", f"the next caller needs the new code {new}"))
        return out

    def on_reject(self, msg: Reject, addr: tuple) -> Outcome:
        """The caller found our confirmation wrong: it holds another code."""
        p = self.pending.get(msg.session)
        if p is None or p.addr[:2] != addr[:2]:
            return Outcome()
        del self.pending[msg.session]
        return self._wrong(p, None)

    def expire(self, now_s: float) -> Outcome:
        out = Outcome()
        for p in [q for q in self.pending.values() if now_s - q.created_s >= PENDING_TIMEOUT_S]:
            del self.pending[p.hello.session]
            out.events.extend(self._wrong(p, None).events)
        return out

    def _wrong(self, p: Pending, reply: Reject | None) -> Outcome:
        self.wrong_codes += 1
        new = self.pairing.wrong_attempt()
        who = _fmt(p.addr)
        if self.pairing.one_time:
            what = (
                f"a caller at {who} gave a wrong code "
                f"({self.pairing.wrong_attempts} of {MAX_WRONG_CODES} attempts)"
            )
        else:
            what = f"a caller at {who} gave a wrong passphrase or key"
        out = Outcome(send=reply, events=[("warn", what)])
        if new is not None:
            n = MAX_WRONG_CODES
            out.events[0] = ("warn", f"a caller at {who} gave a wrong code ({n} of {n} attempts)")
            out.events.append(("code", f"too many wrong codes: the code is now {new}"))
        return out


def _fmt(addr: tuple) -> str:
    host, port = addr[0], addr[1]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
