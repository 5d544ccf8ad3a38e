"""Free loopback UDP ports for tests and benchmarks that start real peers."""

from __future__ import annotations

import socket
import subprocess
import time


def free_udp_port(host: str = "127.0.0.1") -> int:
    """A UDP port nobody holds right now (the kernel's pick; free until someone binds it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def wait_udp_bound(port: int, proc: subprocess.Popen, timeout_s: float = 20.0) -> None:
    """Wait until a socket is bound to UDP ``port`` (Linux's tables; binding the port to
    find out could take it from ``proc`` for an instant). Raises AssertionError, with
    ``proc``'s stderr if it was piped, when ``proc`` ends first or time runs out."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and proc.poll() is None:
        for table in ("/proc/net/udp", "/proc/net/udp6"):
            with open(table) as f:
                rows = f.read().splitlines()[1:]
            if any(int(r.split()[1].rsplit(":", 1)[1], 16) == port for r in rows):
                return
        time.sleep(0.05)
    err = proc.stderr.read() if proc.stderr is not None else ""
    raise AssertionError(f"no socket bound UDP port {port} (exit code {proc.poll()}): {err}")
