"""rtai.testing.ports.wait_udp_bound against real processes and real sockets."""

from __future__ import annotations

import socket
import subprocess
import sys

import pytest

from rtai.testing.ports import free_udp_port, wait_udp_bound

BIND_LATE = (
    "import socket, sys, time\n"
    "time.sleep(0.5)\n"
    "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
    "s.bind(('127.0.0.1', int(sys.argv[1])))\n"
    "time.sleep(10)\n"
)


def test_returns_once_the_process_has_bound_the_port():
    port = free_udp_port()
    proc = subprocess.Popen([sys.executable, "-c", BIND_LATE, str(port)])
    try:
        wait_udp_bound(port, proc, timeout_s=10.0)
        assert proc.poll() is None
        # it returned because the port is taken, not before
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s, pytest.raises(OSError):
            s.bind(("127.0.0.1", port))
    finally:
        proc.kill()
        proc.wait()


def test_a_process_that_ends_without_binding_fails_with_its_stderr():
    port = free_udp_port()
    proc = subprocess.Popen(
        [sys.executable, "-c", "import sys; sys.exit('no such port')"],
        stderr=subprocess.PIPE,
        text=True,
    )
    with pytest.raises(AssertionError, match=f"UDP port {port}.*no such port"):
        wait_udp_bound(port, proc, timeout_s=10.0)
    proc.wait()
