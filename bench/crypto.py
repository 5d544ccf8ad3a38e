"""What encryption costs: per-packet seal and open, rejected packets, a whole call.

1. Seal + open per packet (SRTP AEAD_AES_128_GCM, :mod:`rtai.rtp.srtp`), median over
   batches, for the packet sizes rtai sends, and SRTCP.
2. Cost per rejected datagram on a live encrypted call: ``Peer._receive`` called on
   the listener of a real loopback call with foreign, forged (auth_failed), replayed
   and garbage datagrams (Python's share), and the whole cost including the kernel:
   the CPU time of the listener's network thread while another process floods its
   port with 20,000 datagrams a second, minus the same interval without flood.
3. An encrypted and a plain (``--insecure``) call side by side: ``rtai listen`` and
   ``rtai call`` as processes, file to file over loopback, Opus and PCM, CPU time of
   both processes from ``getrusage(RUSAGE_CHILDREN)``, alternating, several rounds.

Writes the ``crypto`` section of docs/benchmarks.md. Run from the repository root::

    .venv/bin/python bench/crypto.py            # about 3 minutes
    .venv/bin/python bench/crypto.py --quick    # fewer rounds, shorter calls
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common  # noqa: E402

from rtai.pairing import Pairing, derive_call_keys  # noqa: E402
from rtai.rtp.packet import RtpPacket  # noqa: E402
from rtai.rtp.rtcp import ReceiverReport, ReportBlock, Sdes, SdesChunk, build_compound  # noqa: E402
from rtai.rtp.srtp import SrtpReceiver, SrtpSender  # noqa: E402
from rtai.testing.ports import free_udp_port  # noqa: E402

SECTION = "crypto"
RATE = 48000


def _median_us(fn, n: int, batch: int = 500) -> float:
    per = []
    for _ in range(max(1, n // batch)):
        t = time.perf_counter_ns()
        for _ in range(batch):
            fn()
        per.append((time.perf_counter_ns() - t) / batch / 1000)
    return statistics.median(per)


def _rtp_case(keys, ssrc: int, name: str, size: int, ext: dict, n: int) -> list[str]:
    payload = os.urandom(size)
    tx, rx = SrtpSender(keys), SrtpReceiver(keys, ssrc)
    plain = [
        RtpPacket(96, i & 0xFFFF, 0, ssrc, payload, extensions=ext).serialize() for i in range(n)
    ]
    it = iter(plain)
    t_seal = _median_us(lambda: tx.protect_rtp(next(it)), n)
    tx2 = SrtpSender(keys)
    sealed = [tx2.protect_rtp(p) for p in plain]
    it2 = iter(sealed)
    t_open = _median_us(lambda: rx.unprotect_rtp(next(it2)), n)
    return [name, f"{len(plain[0])}", f"{t_seal:.1f}", f"{t_open:.1f}", f"{t_seal + t_open:.1f}"]


def seal_open(n: int) -> list[list[str]]:
    keys = derive_call_keys(b"\x05" * 32, b"bench").caller_to_listener
    ssrc = 0x1234
    rows = [
        _rtp_case(keys, ssrc, "Opus 10 ms, 48 kbit/s (60 B + abs-capture-time)", 60,
                  {1: bytes(8)}, n),
        _rtp_case(keys, ssrc, "PCM 128 frames mono (256 B)", 256, {}, n),
        _rtp_case(keys, ssrc, "PCM 480 frames stereo (1920 B)", 1920, {}, n),
    ]  # fmt: skip
    # SRTCP: a receiver report with SDES, as rtai sends about once a second.
    rr = build_compound(
        [ReceiverReport(ssrc, [ReportBlock(7, 0, 0, 1000, 10)]), Sdes([SdesChunk(ssrc, "rtai@h")])]
    )
    tx, rx = SrtpSender(keys), SrtpReceiver(keys, ssrc)
    t_seal = _median_us(lambda: tx.protect_rtcp(rr), n // 4)
    sealed = iter([tx.protect_rtcp(rr) for _ in range(n // 4)])
    t_open = _median_us(lambda: rx.unprotect_rtcp(next(sealed)), n // 4)
    rows.append(["SRTCP RR + SDES", f"{len(rr)}", f"{t_seal:.1f}", f"{t_open:.1f}",
                 f"{t_seal + t_open:.1f}"])  # fmt: skip
    return rows


# -- a live encrypted call in this process -------------------------------------------


def _pair(seconds: float):
    import socket

    from rtai.audio.clocked import ClockedEndpoint
    from rtai.audio.files import ArraySink
    from rtai.audio.signals import ArraySource, speech
    from rtai.config import PeerConfig
    from rtai.session import Peer

    cfg = PeerConfig(buffer_ms=40)

    def endpoint(sig):
        return ClockedEndpoint(
            ArraySource(sig, RATE), ArraySink(RATE, 1), RATE, 1, cfg.block_frames
        )

    def udp():
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("127.0.0.1", 0))
        return s

    ls = udp()
    lp = Pairing.issue_codes()
    listener = Peer(cfg, endpoint(speech(RATE, seconds + 1, 0)), ls, None, "listener", lp)
    caller = Peer(
        cfg, endpoint(speech(RATE, seconds, 1)), udp(), ls.getsockname(), "caller",
        Pairing.from_code(lp.code),
    )  # fmt: skip
    listener.start()
    caller.start()
    end = time.monotonic() + 5
    while (listener.call is None or caller.call is None) and time.monotonic() < end:
        time.sleep(0.01)
    if listener.call is None:
        raise RuntimeError("the benchmark call did not start")
    time.sleep(0.5)  # media flowing both ways
    return listener, caller


def _thread_cpu_s(name_part: str) -> float:
    """utime + stime of this process's thread whose name contains ``name_part``."""
    tick = os.sysconf("SC_CLK_TCK")
    for t in threading.enumerate():
        if name_part in t.name and t.native_id is not None:
            with open(f"/proc/self/task/{t.native_id}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / tick
    raise RuntimeError(f"no thread {name_part}")


FLOOD = r"""
import os, socket, struct, sys, time
port, seconds, rate, ssrc = int(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
target = ("127.0.0.1", port)
junk = os.urandom(1 << 16)
sent = 0
t0 = time.monotonic()
while time.monotonic() - t0 < seconds:
    for i in range(rate // 100):
        if sent % 2:
            p = struct.pack("!BBHII", 0x80, 96, sent & 0xFFFF, sent, ssrc) + junk[i : i + 272]
        else:
            p = junk[sent % 60000 : sent % 60000 + 200]
        try:
            s.sendto(p, target)
            sent += 1
        except OSError:
            pass
    d = t0 + sent / rate - time.monotonic()
    if d > 0:
        time.sleep(d)
print(sent)
"""


def _receive_us(listener, datagrams: list[bytes], addr: tuple) -> float:
    it = iter(datagrams)
    now = time.monotonic()
    return _median_us(lambda: listener._receive(next(it), addr, now), len(datagrams))


def rejection_costs(n: int, flood_s: float) -> tuple[list[list[str]], dict]:
    listener, caller = _pair(flood_s * 2 + 4)
    try:
        call = listener.call
        remote = call.remote
        ssrc = call.remote_ssrc
        pt = call.accept.payload_type
        keys = derive_call_keys(b"\x09" * 32, b"x").caller_to_listener  # not the call's keys
        forger = SrtpSender(keys)
        cases = {
            "foreign (another address)": (lambda i: RtpPacket(pt, i & 0xFFFF, 0, ssrc,
                                          bytes(272)).serialize(), ("127.0.0.1", 9)),
            "forged SRTP, peer's address (auth_failed)": (lambda i: forger.protect_rtp(
                RtpPacket(pt, (call.guard.rx.s_l + 50 + i % 60) & 0xFFFF, 0, ssrc,
                          bytes(256)).serialize()), remote),
            "old index, peer's address (replayed)": (lambda i: RtpPacket(
                pt, (call.guard.rx.s_l - 1000) & 0xFFFF, 0, ssrc, bytes(272)).serialize(),
                remote),
            "garbage, peer's address (malformed)": (lambda i: b"\x13" + bytes(199), remote),
        }  # fmt: skip
        rows = []
        for name, (make, addr) in cases.items():
            datagrams = [make(i) for i in range(n)]
            us = _receive_us(listener, datagrams, addr)
            rows.append([name, f"{us:.2f}"])
        g = call.guard.counters
        counted = {"auth_failed": g.auth_failed, "replayed": g.replayed, "foreign": g.foreign}
        # Whole cost, kernel included: the listener's network thread during a flood.
        time.sleep(0.5)
        base0 = _thread_cpu_s("listener-net")
        time.sleep(flood_s)
        base = _thread_cpu_s("listener-net") - base0
        port = listener.sock.getsockname()[1]
        f0 = _thread_cpu_s("listener-net")
        out = subprocess.run(
            [sys.executable, "-c", FLOOD, str(port), str(flood_s), "20000", str(ssrc)],
            capture_output=True, text=True, timeout=flood_s + 30,
        )  # fmt: skip
        flooded = _thread_cpu_s("listener-net") - f0
        sent = int(out.stdout.strip())
        snap = listener.snapshot()
        flood = {
            "sent": sent,
            "base_cpu_s": base,
            "flood_cpu_s": flooded,
            "us_per_packet": (flooded - base) / sent * 1e6,
            "foreign": snap.get("foreign"),
            "concealed": snap.get("concealed"),
            "played": snap.get("played"),
            "counted": counted,
        }
    finally:
        caller.stop()
        listener.stop()
    return rows, flood


# -- encrypted vs plain calls as processes ----------------------------------------------


def _rtai(*args: str, **kw) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "rtai", *args],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        text=True, **kw,
    )  # fmt: skip


def one_call(mode: str, codec: str, src: Path, out_dir: Path, seconds: float) -> float:
    """CPU seconds (user + system) of listener and caller for one file-to-file call."""
    port = free_udp_port()
    sec = ["--insecure"] if mode == "plain" else ["--passphrase", "bench passphrase"]
    common = ["--codec", codec, "--buffer", "40", "-q"]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    listener = _rtai("listen", "--bind", "127.0.0.1", "--port", str(port), "--input",
                     str(src), "--output", "null", "--seconds", str(seconds + 3), *sec,
                     *common)  # fmt: skip
    time.sleep(1.0)
    caller = _rtai("call", f"127.0.0.1:{port}", "--input", str(src), "--output",
                   str(out_dir / f"{mode}-{codec}.wav"), *sec, *common)  # fmt: skip
    _, err_c = caller.communicate(timeout=seconds + 30)
    _, err_l = listener.communicate(timeout=seconds + 30)
    if caller.returncode != 0:
        raise RuntimeError(f"{mode} {codec} call failed: {err_c.strip()[-300:]}")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def call_cpu(rounds: int, seconds: float) -> list[list[str]]:
    import soundfile as sf

    from rtai.audio.signals import speech

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmpd = Path(tmp)
        src = tmpd / "speech.wav"
        sf.write(src, speech(RATE, seconds, 1), RATE, subtype="PCM_16")
        for codec in ("opus", "pcm"):
            cpu: dict[str, list[float]] = {"plain": [], "encrypted": []}
            for r in range(rounds):
                order = ("plain", "encrypted") if r % 2 == 0 else ("encrypted", "plain")
                for mode in order:
                    cpu[mode].append(one_call(mode, codec, src, tmpd, seconds))
                    print(f"  {codec} {mode} round {r + 1}: {cpu[mode][-1]:.2f} s CPU")
            p, e = statistics.median(cpu["plain"]), statistics.median(cpu["encrypted"])
            pairs = zip(cpu["plain"], cpu["encrypted"], strict=True)
            each = ", ".join(f"{a:.2f}/{b:.2f}" for a, b in pairs)
            rows.append([codec, f"{seconds:g}", f"{p:.2f}", f"{e:.2f}",
                         f"{(e - p) / p * 100:+.1f} %", each])  # fmt: skip
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--no-write", action="store_true")
    args = p.parse_args(argv)
    info = _common.machine()
    n = 4000 if args.quick else 20000
    print("seal + open ...")
    so = seal_open(n)
    print(_common.markdown_table(["packet", "bytes", "seal µs", "open µs", "sum µs"], so, "lrrrr"))
    print("rejections ...")
    rej, flood = rejection_costs(n // 4, 4.0 if args.quick else 8.0)
    print(_common.markdown_table(["datagram", "µs"], rej, "lr"))
    print(flood)
    print("calls ...")
    calls = call_cpu(1 if args.quick else 3, 6.0 if args.quick else 10.0)
    head = ["codec", "call s", "plain CPU s", "encrypted CPU s", "difference", "rounds"]
    print(_common.markdown_table(head, calls, "lrrrrl"))
    if args.no_write:
        return 0
    body = f"""## Encryption cost (SRTP AEAD_AES_128_GCM)

Measured {_common.now_stamp()} on {_common.machine_line(info)};
`cryptography` {_cryptography_version()}.

Seal and open per packet (median over batches of 500; seal excludes building the RTP
packet):

{_common.markdown_table(["packet", "bytes", "seal µs", "open µs", "seal + open µs"], so, "lrrrr")}

Cost per rejected datagram on the listener of a live encrypted loopback call
(`Peer._receive`, the Python share, median):

{_common.markdown_table(["datagram", "µs each"], rej, "lr")}

Whole cost including the kernel (`recvfrom` and all): another process sent
{flood["sent"]:,} datagrams (half garbage, half forged SRTP with the caller's SSRC)
from another port at the listener's port in {flood["sent"] / 20000:.0f} s; the
listener's network thread used {flood["flood_cpu_s"]:.2f} s of CPU against
{flood["base_cpu_s"]:.2f} s in as long a quiet interval:
**{flood["us_per_packet"]:.1f} µs per rejected datagram** (clock ticks of 10 ms, so
about ±0.2 µs). The listener counted {flood["foreign"]:,} of them as `foreign` (the
kernel dropped the rest when the socket buffer was full). The call went on:
{flood["concealed"]} of {flood["played"]} blocks concealed so far in the call
({100 * flood["concealed"] / max(1, flood["played"]):.2f} %).

A whole call, encrypted and plain side by side (`rtai listen` + `rtai call` as
processes, a speech file to a file over loopback, `--buffer 40`; CPU is user + system
of both processes, which includes start-up and the listener's extra 3 s; median of
the rounds, each "plain/encrypted"):

{_common.markdown_table(head, calls, "lrrrrl")}

Reproduce: `{_common.reproduce_command("bench/crypto.py", argv)}`
"""
    _common.write_section(SECTION, body)
    return 0


def _cryptography_version() -> str:
    import cryptography

    return cryptography.__version__


if __name__ == "__main__":
    sys.exit(main())
