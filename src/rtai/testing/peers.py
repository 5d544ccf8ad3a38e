"""Real peer processes that tests and benchmarks start: waiting until they are in a
call, and stopping them."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path


class PeerNotReady(RuntimeError):
    """The peers did not reach a call in time, or one of them exited first."""


def wait_in_call(
    stats_paths: Sequence[Path], procs: Sequence[subprocess.Popen], timeout_s: float
) -> None:
    """Return once every ``--stats-json`` file has a row in a call (the peers write one a
    second); raise :class:`PeerNotReady` when ``timeout_s`` passes first or a peer exits
    (with its stderr, when it was piped). A loaded machine can take seconds to start
    Python and shake hands: audio played before the call is up is simply not carried."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        ready = 0
        for path in stats_paths:
            if path.exists():
                rows = [json.loads(line) for line in path.read_text().splitlines() if line]
                ready += any(r.get("state") == "in call" for r in rows)
        if ready == len(stats_paths):
            return
        for p in procs:
            if p.poll() is not None:
                err = p.stderr.read() if p.stderr else ""
                raise PeerNotReady(f"a peer exited with {p.returncode} before the call: {err}")
        time.sleep(0.1)
    raise PeerNotReady(f"the peers were not in a call within {timeout_s:g} s")


def stop_processes(procs: Sequence[subprocess.Popen], timeout_s: float = 5.0) -> None:
    """Stop the processes a test started, newest first: SIGTERM, then SIGKILL for any
    still running after ``timeout_s``; those already ended are left alone."""
    for p in reversed(procs):
        if p.poll() is None:
            p.terminate()
            try:
                p.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(timeout=timeout_s)
