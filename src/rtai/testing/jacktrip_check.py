"""Checks shared by the JackTrip interop system tests: sent speech against what came out.

The signals are 16-bit codes (int arrays); "exact" means identical codes once aligned.
JackTrip's queue can slip by a few blocks part-way through a run, so besides the
longest exact run the checks look window by window, each window at its own delay.
Also the JACK plumbing those tests need around a real ``jacktrip`` process (its ports
appear late, and it activates its JACK client only once its peer is there).
"""

from __future__ import annotations

import subprocess
import time

import numpy as np

from rtai.audio.signals import speech
from rtai.dsp.align import find_lag, windowed_delays
from rtai.testing.ports import wait_udp_bound

SETTLE_S = 1.0  # JackTrip's queue settles over the first second it plays (glitches there)


def speech_codes(rate_hz: int, seconds: float, seed: int) -> np.ndarray:
    """Speech as 16-bit codes."""
    x = speech(rate_hz, seconds, seed)
    return np.clip(np.rint(x * 32768.0), -32768, 32767).astype(np.int16)


def longest_exact_run(sent: np.ndarray, got: np.ndarray) -> tuple[int, int]:
    """(longest run of identical samples once aligned, the lag)."""
    lag = find_lag(sent.astype(np.float32), got.astype(np.float32))
    if lag >= 0:
        a, b = sent, got[lag:]
    else:
        a, b = sent[-lag:], got
    n = min(len(a), len(b))
    eq = np.concatenate([[False], a[:n] == b[:n], [False]])
    edges = np.flatnonzero(np.diff(eq.astype(np.int8)))
    runs = edges[1::2] - edges[0::2]
    return (int(runs.max()) if len(runs) else 0), lag


def exact_windows(
    sent: np.ndarray,
    got: np.ndarray,
    rate_hz: int,
    window_s: float = 0.25,
    settle_s: float = SETTLE_S,
    search_back_s: float = 0.0,
) -> list[tuple[float, bool]]:
    """(start in seconds, bit-exact?) for each loud window of ``sent`` that starts at or
    after ``settle_s``, each compared with ``got`` at its own delay: once settled the
    path is sample-exact, but a JackTrip queue slip under a loaded machine moves the
    delay by a few blocks part-way through. Each window's delay is sought from
    ``search_back_s`` before the whole signal's (a slip can shorten it) to 0.3 s after."""
    a, b = sent.astype(np.float32), got.astype(np.float32)
    lag = find_lag(a, b)
    offset = lag - int(search_back_s * rate_hz)  # sent[0] is sought from got[offset]
    rows = windowed_delays(a, 0, b, -offset, rate_hz, window_s=window_s)
    w = int(window_s * rate_hz)
    out = []
    for t_s, delay_ms, _ in rows:
        if t_s < settle_s:
            continue
        start = round(t_s * rate_hz)
        at = start + offset + round(delay_ms * rate_hz / 1000.0)
        ok = 0 <= at and at + w <= len(got)
        out.append((t_s, ok and bool(np.array_equal(sent[start : start + w], got[at : at + w]))))
    return out


def exact_window_fraction(
    sent: np.ndarray,
    got: np.ndarray,
    rate_hz: int,
    window_s: float = 0.25,
    settle_s: float = SETTLE_S,
) -> float:
    """The share of loud windows of ``sent`` found bit-exact in ``got`` (see
    :func:`exact_windows`); 0.0 when there is none."""
    rows = exact_windows(sent, got, rate_hz, window_s, settle_s)
    return sum(ok for _, ok in rows) / len(rows) if rows else 0.0


def window_correlation(
    sent: np.ndarray,
    got: np.ndarray,
    rate_hz: int,
    quantile: float = 50.0,
    window_s: float = 0.5,
    settle_s: float = SETTLE_S,
) -> float:
    """A percentile (the median by default) over windows of the correlation at each
    window's own delay: a buffer slip on the way (JackTrip's queue) costs one window,
    not all."""
    a, b = sent.astype(np.float32), got.astype(np.float32)
    lag = find_lag(a, b)
    rows = windowed_delays(a, 0, b, -lag, rate_hz, window_s=window_s)
    return float(np.percentile([corr for t, _, corr in rows if t >= settle_s] or [0.0], quantile))


def wait_for_port(client, name: str, timeout_s: float = 15.0) -> None:
    """Wait until a JACK port called ``name`` exists (AssertionError if it does not)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if client.get_ports(name):
            return
        time.sleep(0.1)
    raise AssertionError(f"JACK port {name} did not appear")


def connect(client, src: str, dst: str, timeout_s: float = 15.0) -> None:
    """JackTrip activates its JACK client only once its peer is there: retry until then."""
    import jack

    deadline = time.monotonic() + timeout_s
    while True:
        try:
            client.connect(src, dst)
            return
        except jack.JackError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def block_delays(
    sent: np.ndarray, got: np.ndarray, offset: int, max_delay: int, block: int = 64
) -> list[tuple[int, int | None]]:
    """Where each loud ``block``-sample piece of ``sent`` came out bit-exact in ``got``.

    ``sent[0]`` would be at ``got[offset]`` with no delay (from the rig's frame times).
    Returns ``(start in sent, delay in samples or None)`` for each piece louder than
    -50 dBFS, the delay sought in ``0 .. max_delay`` (the one nearest the previous
    piece's when it is there more than once). A path that only loses or repeats whole
    periods (an xrun, a queue trimmed) keeps every piece but those cut by a change.
    """
    out: list[tuple[int, int | None]] = []
    prev: int | None = None
    for p in range(0, len(sent) - block + 1, block):
        seg = sent[p : p + block]
        if np.sqrt(np.mean(seg.astype(np.float64) ** 2)) < 32768 * 10 ** (-50 / 20):
            continue
        lo = int(offset) + p
        hay = got[max(0, lo) : lo + max_delay + block]
        first = np.flatnonzero(hay[: len(hay) - block + 1] == seg[0])
        hits = [int(k) for k in first if np.array_equal(hay[k : k + block], seg)]
        delays = [k + max(0, lo) - lo for k in hits]
        if not delays:
            out.append((p, None))
            continue
        d = min(delays, key=lambda x: abs(x - prev)) if prev is not None else delays[0]
        out.append((p, d))
        prev = d
    return out


def start_peers(
    procs: list,
    jacktrip_mode: str,
    jt_cmd: list[str],
    rtai_args: list[str],
    env: dict[str, str],
    card,
    jt_name: str,
    rtai_port: int,
    channels: int,
) -> None:
    """Start ``jacktrip`` and rtai in the order their modes need (the server first, the
    client once the server is there), appending each to ``procs`` as it starts (so the
    caller stops whatever did start, even when this raises), then wire JackTrip's JACK
    ports to the rig ``card``: its microphones into JackTrip's sends, JackTrip's
    receives into its speakers."""

    def jacktrip() -> None:
        procs.append(subprocess.Popen(jt_cmd, env=env, stdout=subprocess.DEVNULL,
                                      stderr=subprocess.STDOUT))  # fmt: skip
        wait_for_port(card.client, f"{jt_name}:send_1")

    def rtai() -> None:
        procs.append(subprocess.Popen(rtai_args, env=env, stderr=subprocess.PIPE, text=True))

    if jacktrip_mode == "server":
        jacktrip()
        rtai()
    else:
        rtai()
        wait_udp_bound(rtai_port, procs[-1])
        jacktrip()
    for c in range(1, channels + 1):
        connect(card.client, f"{card.name}:mic_{c}", f"{jt_name}:send_{c}")
        connect(card.client, f"{jt_name}:receive_{c}", f"{card.name}:spk_{c}")
