"""rtai's JackTrip sender with redundancy: every datagram the same size, from the first.

JackTrip pads its first datagrams with empty (zero) slots until it has sent as many
packets as its redundancy, and some JackTrip versions size every datagram they read by
the first one they got: so rtai pads the same way. The peer here is a plain UDP socket
of the test standing in for a JackTrip server.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time

from rtai.jacktrip import protocol as jt


def test_every_datagram_holds_redundancy_packets_and_the_first_is_padded():
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(10.0)
    port = sock.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "rtai", "jacktrip", "-c", "127.0.0.1", "-P", str(port),
         "--insecure", "-n", "2", "-r", "3", "-F", "64", "--input", "speech",
         "--output", "null", "--seconds", "1"],
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    datagrams = []
    try:
        deadline = time.monotonic() + 20.0
        while len(datagrams) < 5 and time.monotonic() < deadline:
            data, _ = sock.recvfrom(65536)
            if not jt.is_exit_packet(data):
                datagrams.append(data)
    finally:
        proc.wait(timeout=20)
        sock.close()
    packet = 16 + 64 * 2 * 2
    assert [len(d) for d in datagrams] == [3 * packet] * 5, proc.stderr.read()
    assert datagrams[0][packet:] == bytes(2 * packet)  # two empty slots
    assert datagrams[1][2 * packet :] == bytes(packet)  # one
    seqs = [[p.header.seq for p in jt.parse_datagram(d)] for d in datagrams]
    assert seqs == [[0], [1, 0], [2, 1, 0], [3, 2, 1], [4, 3, 2]]
