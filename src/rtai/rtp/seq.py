"""Wrap-aware arithmetic on 16-bit RTP sequence numbers and 32-bit timestamps.

Every comparison of sequence numbers in rtai goes through these helpers (RFC 3550
section A.1 and RFC 1982 serial-number arithmetic): a raw ``a < b`` is wrong at
the 65535 -> 0 wrap.
"""

SEQ_MOD = 1 << 16
TS_MOD = 1 << 32


def seq_add(seq: int, n: int) -> int:
    """Return ``seq + n`` modulo 2**16."""
    return (seq + n) % SEQ_MOD


def seq_diff(a: int, b: int) -> int:
    """Signed distance ``a - b`` in the range [-32768, 32767], across the wrap."""
    d = (a - b) % SEQ_MOD
    return d - SEQ_MOD if d >= SEQ_MOD // 2 else d


def seq_newer(a: int, b: int) -> bool:
    """True when sequence number ``a`` comes after ``b`` (serial-number order)."""
    return seq_diff(a, b) > 0


def ts_diff(a: int, b: int) -> int:
    """Signed distance ``a - b`` between two 32-bit RTP timestamps, across the wrap."""
    d = (a - b) % TS_MOD
    return d - TS_MOD if d >= TS_MOD // 2 else d


class SeqUnwrapper:
    """Extend 16-bit sequence numbers to a monotonic-ish 64-bit count.

    The first value seen maps to itself; later values map to the extended number
    nearest the last one seen, so reordering within half the space is handled.
    """

    def __init__(self) -> None:
        self._last: int | None = None

    def unwrap(self, seq: int) -> int:
        if self._last is None:
            self._last = seq
            return seq
        ext = self._last + seq_diff(seq, self._last % SEQ_MOD)
        if ext > self._last:
            self._last = ext
        return ext
