"""Fuzz every parser that touches network bytes, a million inputs or more.

Targets (the first input byte picks one, the rest is the datagram):

* handshake: ``rtai.handshake.decode_message``, then the listener's key-exchange
  guard on any HELLO/CONFIRM/REJECT it yields;
* RTP (``parse_rtp``) with its RFC 8285 header extensions and abs-capture-time;
* RTCP compound packets (``parse_compound``);
* RED payloads (``decode_red``);
* SRTP and SRTCP unprotect (``SrtpReceiver``), against a receiver whose window has
  seen traffic, and also against genuinely sealed packets with the fuzz bytes mixed in;
* payload decoders of every registered codec (decode and FEC recover);
* the whole receive path of a call (``MediaReceiver.receive`` then playout).

Each target may raise only its module's own error (HandshakeError, RtpError,
RtcpError, SrtpError, CodecError, PairingError); anything else is a crash, which the
engine reports with the input that caused it. Engines: ``atheris`` (coverage-guided
libFuzzer, when installed) or ``random`` (mutations of a seed corpus). A per-input
time limit catches hangs, a resident-memory limit catches unbounded growth.

The run's figures go to the ``fuzz`` (atheris) or ``fuzz-random`` section of
docs/security.md.

    .venv/bin/python bench/fuzz.py --runs 1000000
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common  # noqa: E402

SECURITY_MD = _common.REPO / "docs" / "security.md"
SECTION = "fuzz"
TARGETS = (
    "handshake",
    "rtp",
    "rtcp",
    "red",
    "srtp",
    "srtcp",
    "srtp-mixed",
    "decoders",
    "receive-path",
)


def _import_targets():
    """Import the code under test (inside atheris' instrumentation when used)."""
    from rtai import codecs
    from rtai.codecs import CodecError
    from rtai.handshake import Confirm, HandshakeError, Hello, Reject, decode_message
    from rtai.media import MediaReceiver
    from rtai.pairing import AttemptLimiter, Pairing, PairingError, derive_call_keys
    from rtai.rtp import rtcp
    from rtai.rtp.extensions import ABS_CAPTURE_TIME_ID, decode_abs_capture_time
    from rtai.rtp.packet import RtpError, RtpPacket, parse_rtp
    from rtai.rtp.red import decode_red
    from rtai.rtp.srtp import SrtpError, SrtpReceiver, SrtpSender
    from rtai.security import ListenerGuard

    names = (codecs, CodecError, Confirm, HandshakeError, Hello, Reject, decode_message,
             MediaReceiver, AttemptLimiter, Pairing, PairingError, derive_call_keys, rtcp,
             ABS_CAPTURE_TIME_ID, decode_abs_capture_time, RtpError, RtpPacket, parse_rtp,
             decode_red, SrtpError, SrtpReceiver, SrtpSender, ListenerGuard)  # fmt: skip
    assert all(n is not None for n in names)
    return dict(locals())


class Harness:
    def __init__(self, m: dict) -> None:
        self.m = m
        keys = m["derive_call_keys"](b"\x01" * 32, b"fuzz").caller_to_listener
        self.sender = m["SrtpSender"](keys)
        self.rx_keys = keys
        self.ssrc = 0x11223344
        self.sealed = [
            self.sender.protect_rtp(
                m["RtpPacket"](96, (65500 + i) & 0xFFFF, i * 128, self.ssrc, bytes(64)).serialize()
            )
            for i in range(64)
        ]
        self.sealed_rtcp = [self.sender.protect_rtcp(self._sr()) for _ in range(8)]
        self.rx = self._fresh_rx()
        self.guard = m["ListenerGuard"](
            m["Pairing"].issue_codes(), m["AttemptLimiter"](1e12, 1e12, 1e12, 1e12)
        )
        self.decoders = []
        for name in m["codecs"].codec_names():
            info = m["codecs"].get_codec(name)
            block = 480 if name == "opus" else 128
            if info.check(48000, 1, block) is None:
                self.decoders.append(info.make_decoder(48000, 1, block))
        self.receivers = []
        for name in ("pcm", "opus"):
            info = m["codecs"].get_codec(name)
            block = 480 if name == "opus" else 128
            self.receivers.append(
                m["MediaReceiver"](info, 48000, 1, block, info.payload_type, self.ssrc, 20.0)
            )
        self.now = 0.0
        self.calls = 0
        self.per_target = dict.fromkeys(TARGETS, 0)

    def _sr(self) -> bytes:
        r = self.m["rtcp"]
        return r.build_compound([r.SenderReport(self.ssrc, 1, 2, 3, 4, [])])

    def _fresh_rx(self):
        rx = self.m["SrtpReceiver"](self.rx_keys, self.ssrc)
        for p in self.sealed[:40]:
            rx.unprotect_rtp(p)
        for p in self.sealed_rtcp[:4]:
            rx.unprotect_rtcp(p)
        return rx

    def one(self, data: bytes) -> None:
        self.calls += 1
        if not data:
            return
        m = self.m
        target = TARGETS[data[0] % len(TARGETS)]
        self.per_target[target] += 1
        body = data[1:]
        if target == "handshake":
            try:
                msg = m["decode_message"](b"RTAI\x01" + body if body[:1] != b"R" else body)
            except m["HandshakeError"]:
                return
            if isinstance(msg, m["Hello"]):
                if len(self.guard.pending) > 2:
                    self.guard.pending.clear()
                self.guard.on_hello(msg, _accept(m, msg), ("192.0.2.1", 9), self.now)
            elif isinstance(msg, m["Confirm"]):
                self.guard.on_confirm(msg, ("192.0.2.1", 9))
            elif isinstance(msg, m["Reject"]):
                self.guard.on_reject(msg, ("192.0.2.1", 9))
        elif target == "rtp":
            try:
                p = m["parse_rtp"](body)
                for ext_id, ext in p.extensions.items():
                    if ext_id == m["ABS_CAPTURE_TIME_ID"]:
                        m["decode_abs_capture_time"](ext)
                p.serialize()
            except m["RtpError"]:
                pass
        elif target == "rtcp":
            try:
                m["rtcp"].parse_compound(body)
            except m["rtcp"].RtcpError:
                pass
        elif target == "red":
            try:
                m["decode_red"](body)
            except m["RtpError"]:
                pass
        elif target in ("srtp", "srtcp"):
            try:
                if target == "srtp":
                    self.rx.unprotect_rtp(body)
                else:
                    self.rx.unprotect_rtcp(body)
            except m["SrtpError"]:
                pass
        elif target == "srtp-mixed":  # a genuine packet with fuzz bytes spliced in
            base = bytearray(self.sealed[40 + len(body) % 24])
            if body:
                at = body[0] % len(base)
                base[at : at + len(body) - 1] = body[1:]
            try:
                self.rx.unprotect_rtp(bytes(base))
            except m["SrtpError"]:
                pass
            if self.calls % 1000 == 0:
                self.rx = self._fresh_rx()
        elif target == "decoders":
            if not self.decoders:
                return
            dec = self.decoders[len(body) % len(self.decoders)]
            try:
                out = dec.decode(body)
                assert out.ndim == 2
                dec.recover(body)
            except m["CodecError"]:
                pass
        elif target == "receive-path":
            recv = self.receivers[len(body) % 2]
            self.now += 0.003
            recv.receive(body, self.now)  # counts and drops bad input itself
            recv.playout(self.now)


def _accept(m, hello):
    from rtai.handshake import Accept

    return Accept(hello.session, 48000, 1, 128, "pcm", 96, 1, "c")


def seeds(h: Harness) -> list[bytes]:
    """A starting corpus: one valid input per target."""
    m = h.m
    from rtai.handshake import Hello, encode_message
    from rtai.security import CallerGuard

    hello = Hello("s", 48000, 1, 128, ("pcm",), 1, "c", "rtai",
                  **CallerGuard(m["Pairing"].from_passphrase("x")).hello_fields())  # fmt: skip
    rtp_ext = m["RtpPacket"](96, 1, 2, h.ssrc, bytes(256), extensions={1: bytes(8)}).serialize()
    out = []
    for i, t in enumerate(TARGETS):
        body = {
            "handshake": encode_message(hello),
            "rtp": rtp_ext,
            "rtcp": h._sr(),
            "red": bytes([0x80 | 96, 0, 0x20, 10, 96]) + bytes(30),
            "srtp": h.sealed[50],
            "srtcp": h.sealed_rtcp[6],
            "srtp-mixed": b"\x05abc",
            "decoders": bytes(256),
            "receive-path": rtp_ext,
        }[t]
        out.append(bytes([i]) + body)
    return out


def mutate(rng: random.Random, data: bytes, corpus: list[bytes]) -> bytes:
    b = bytearray(data)
    for _ in range(rng.randint(1, 6)):
        op = rng.randrange(7)
        if op == 0 and b:
            b[rng.randrange(len(b))] ^= 1 << rng.randrange(8)
        elif op == 1 and b:
            b[rng.randrange(len(b))] = rng.randrange(256)
        elif op == 2:
            b.insert(rng.randrange(len(b) + 1), rng.randrange(256))
        elif op == 3 and len(b) > 1:
            del b[rng.randrange(1, len(b))]
        elif op == 4:
            b = b[: rng.randrange(len(b) + 1)]
        elif op == 5:
            other = rng.choice(corpus)
            cut = rng.randrange(len(other) + 1)
            b = b[: rng.randrange(len(b) + 1)] + other[cut:]
        else:
            b += rng.randbytes(rng.randrange(1, 40))
    if rng.random() < 0.02:
        b = bytearray(rng.randbytes(rng.randrange(0, 1600)))
    return bytes(b[:12001])


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_random(h: Harness, runs: int, seed: int, max_s: float, progress) -> dict:
    rng = random.Random(seed)
    corpus = seeds(h)
    worst_s = 0.0
    rss_at_10pct = None
    for i in range(runs):
        base = rng.choice(corpus)
        data = mutate(rng, base, corpus)
        t = time.perf_counter()
        h.one(data)
        dt = time.perf_counter() - t
        worst_s = max(worst_s, dt)
        if dt > max_s:
            raise RuntimeError(f"hang: input took {dt:.2f} s: {data.hex()}")
        if i % 997 == 0 and len(corpus) < 4096:
            corpus.append(data)  # keep some mutants to mutate further
        if i == runs // 10:
            rss_at_10pct = rss_mb()
        if i % 5000 == 0:
            progress(i)
    progress(runs)
    return {"slowest_input_ms": round(worst_s * 1000, 2), "rss_mb_at_10pct": rss_at_10pct}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=1_000_000)
    p.add_argument("--engine", choices=("auto", "atheris", "random"), default="auto")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--max-input-s", type=float, default=5.0, help="hang limit per input")
    p.add_argument("--rss-limit-mb", type=int, default=1024)
    p.add_argument("--no-write", action="store_true", help="do not update docs/security.md")
    args = p.parse_args(argv)
    engine = args.engine
    if engine in ("auto", "atheris"):
        try:
            import atheris
        except ImportError:
            if engine == "atheris":
                print("fuzz: atheris is not installed; use --engine random", file=sys.stderr)
                return 2
            engine = "random"
        else:
            engine = "atheris"
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    resource.setrlimit(
        resource.RLIMIT_AS, (args.rss_limit_mb * 4 * 1024 * 1024, resource.RLIM_INFINITY)
    )
    info = _common.machine()
    t0 = time.monotonic()
    cpu0 = time.process_time()
    if engine == "atheris":
        with atheris.instrument_imports():
            mods = _import_targets()
    else:
        mods = _import_targets()
    h = Harness(mods)
    bar = Progress(
        "[bold]fuzz",
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        transient=False,
    )
    task = bar.add_task("inputs", total=args.runs)
    extra: dict = {}
    with bar:
        if engine == "atheris":
            corpus_dir = Path(os.environ.get("TMPDIR", "/tmp")) / f"rtai-fuzz-{os.getpid()}"
            corpus_dir.mkdir(exist_ok=True)
            for i, s in enumerate(seeds(h)):
                (corpus_dir / f"seed{i}").write_bytes(s)

            def one(data: bytes) -> None:
                h.one(data)
                if h.calls % 5000 == 0:
                    bar.update(task, completed=h.calls)
                if h.calls >= args.runs:
                    bar.update(task, completed=h.calls)
                    finish()

            def finish() -> None:
                report(args, engine, h, info, t0, cpu0, extra)
                os._exit(0)

            atheris.Setup(
                [
                    sys.argv[0],
                    f"-timeout={int(args.max_input_s)}",
                    f"-rss_limit_mb={args.rss_limit_mb}",
                    "-max_len=2048",
                    f"-seed={args.seed}",
                    "-print_final_stats=1",
                    str(corpus_dir),
                ],
                one,
            )
            atheris.Fuzz()  # exits the process itself on a crash
        else:
            extra = run_random(
                h, args.runs, args.seed, args.max_input_s, lambda i: bar.update(task, completed=i)
            )
    report(args, engine, h, info, t0, cpu0, extra)
    return 0


def report(args, engine: str, h: Harness, info: dict, t0: float, cpu0: float, extra) -> None:
    wall = time.monotonic() - t0
    result = {
        "engine": engine,
        "inputs": h.calls,
        "per_target": h.per_target,
        "wall_s": round(wall, 1),
        "cpu_s": round(time.process_time() - cpu0, 1),
        "max_rss_mb": round(rss_mb(), 1),
        "crashes": 0,
        **extra,
    }
    print(json.dumps(result, indent=1))
    if args.no_write:
        return
    rows = [[t, f"{n:,}"] for t, n in h.per_target.items()]
    body = f"""### Fuzz run ({engine})

Measured {_common.now_stamp()} on {_common.machine_line(info)}.
Engine: {engine}{" (coverage-guided libFuzzer)" if engine == "atheris" else ""};
{h.calls:,} inputs in {wall:.0f} s ({result["cpu_s"]} s CPU); no crash, no input over the
{args.max_input_s:g} s hang limit; peak resident memory {result["max_rss_mb"]} MB
(limit {args.rss_limit_mb} MB).
{_random_note(extra)}

{_common.markdown_table(["target", "inputs"], rows, "lr")}

Reproduce: `{_common.reproduce_command("bench/fuzz.py", sys.argv[1:] if argv_ok() else [])}`
"""
    _common.write_section(SECTION if engine == "atheris" else f"{SECTION}-{engine}", body,
                          SECURITY_MD)  # fmt: skip


def _random_note(extra: dict) -> str:
    if not extra:
        return ""
    return (
        f"Slowest input {extra['slowest_input_ms']} ms; resident memory after 10 % of the "
        f"run {extra['rss_mb_at_10pct']:.1f} MB."
    )


def argv_ok() -> bool:
    return all(not a.startswith("-") or a.startswith("--") for a in sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
