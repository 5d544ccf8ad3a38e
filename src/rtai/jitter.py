"""The receive jitter buffer: packets in, one playout decision per block out.

Pure logic (sans-I/O): the caller passes arrival and playout times in seconds
from its own clock, so every behaviour replays in a unit test.

* Packets are keyed by their sequence number, extended past the 16-bit wrap.
  Storage is a fixed ring of ``capacity_blocks`` slots; every slot remembers the
  extended sequence number it holds, so a slot is only ever played for the very
  packet that was stored in it (never stale audio from an old lap of the ring).
* ``insert`` sorts each arrival into accepted, duplicate, late (its playout time
  has passed) or resync (so far ahead of playout that the stream must have
  restarted). A packet that missed its slot while nothing is queued behind it is
  played next instead (reanchored), if the slots it missed were all concealed and
  are at most ``rewind_blocks`` (1 for a fixed buffer): the delay grows rather than
  every following packet arriving just too late as well.
* ``pop`` is called by the playout callback once per block and decides, at
  playout time, what to play: the next packet (``NORMAL``), a concealment block
  when it is missing (``CONCEAL``, carrying the payload of the packet after it when
  that one is already here, so a codec with in-band FEC can rebuild the missing
  block from it), or silence while (re)buffering (``IDLE``).

The delay policy is a fixed target here: playout starts ``target_ms`` after the
first packet arrives, and restarts the same way after the stream has dried up
(``max_conceal_blocks`` missing in a row with nothing buffered). If the buffer
overfills (a sender whose clock runs fast), the oldest blocks are dropped back
to the target as a last resort. ``target_ms`` may be changed at any time, which
is the hook an adaptive policy drives.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from rtai.rtp.seq import SeqUnwrapper, seq_diff


class Playout(Enum):
    NORMAL = "normal"
    CONCEAL = "conceal"
    IDLE = "idle"


class Arrival(Enum):
    ACCEPTED = "accepted"
    DUPLICATE = "duplicate"
    LATE = "late"
    RESYNC = "resync"
    REANCHORED = "reanchored"


@dataclass(slots=True)
class PlayoutItem:
    kind: Playout
    seq: int | None = None
    payload: bytes | None = None
    capture_s: float | None = None
    arrival_s: float | None = None
    next_payload: bytes | None = None  # with CONCEAL: the following packet, if here
    timestamp: int | None = None  # the packet's RTP timestamp


@dataclass(slots=True)
class JitterCounters:
    accepted: int = 0
    duplicates: int = 0
    late: int = 0
    resyncs: int = 0
    played: int = 0
    concealed: int = 0
    idle: int = 0
    overflow_dropped: int = 0
    rebuffers: int = 0
    refill_silent: int = 0  # silent blocks while refilling after a rebuffer
    reanchored: int = 0
    redundant_used: int = 0


_IDLE = PlayoutItem(Playout.IDLE)

# Added to every extended sequence number so it is always positive: the unwrapper
# maps a packet from before the first one seen to a negative number, which would
# collide with the empty-slot marker -1 (and ``_oldest`` would pick empty slots).
_EXT_BASE = 1 << 32


class JitterBuffer:
    def __init__(
        self,
        block_frames: int,
        rate_hz: int,
        target_ms: float,
        capacity_blocks: int = 512,
        max_conceal_blocks: int | None = None,
        rewind_blocks: int = 1,
    ) -> None:
        if block_frames <= 0 or rate_hz <= 0:
            raise ValueError("block_frames and rate_hz must be positive")
        self.block_s = block_frames / rate_hz
        self.capacity_blocks = capacity_blocks
        self.target_ms = target_ms
        # Missing blocks in a row, with nothing buffered, before we call the stream
        # stopped and rebuffer: 200 ms of audio by default.
        self.max_conceal_blocks = max_conceal_blocks or max(4, round(0.2 / self.block_s))
        # How many concealed slots a late packet may reclaim when nothing is queued:
        # 1 for a fixed buffer; the adaptive buffer lets a whole spike's worth back in.
        self.rewind_blocks = rewind_blocks
        # Blocks over the target tolerated before the oldest are dropped (at least 4 and
        # the target again); the adaptive buffer raises it, as it shrinks by itself.
        self.overflow_margin_blocks = 0
        self.counters = JitterCounters()
        self._slot_seq = [-1] * capacity_blocks
        self._slot: list[PlayoutItem | None] = [None] * capacity_blocks
        self._unwrap = SeqUnwrapper()
        self._floor: int | None = None  # everything below has been played or given up
        self._reset_playout()

    # -- state -------------------------------------------------------------------------

    def _reset_playout(self) -> None:
        self._next: int | None = None  # extended seq to play next; None while buffering
        self._first_arrival_s: float | None = None
        self._missing_run = 0
        self._count = 0
        self._newest: int | None = None

    @property
    def playing(self) -> bool:
        return self._next is not None

    @property
    def target_blocks(self) -> int:
        return max(1, round(self.target_ms / 1000.0 / self.block_s))

    @property
    def depth_blocks(self) -> int:
        """Blocks from the next one to play up to the newest one held (gaps included)."""
        if self._newest is None or self._count == 0:
            return 0
        start = self._next if self._next is not None else self._oldest()
        return max(0, self._newest - start + 1)

    @property
    def buffered_ms(self) -> float:
        return self.depth_blocks * self.block_s * 1000.0

    def _oldest(self) -> int:
        assert self._newest is not None
        lo = self._newest - self.capacity_blocks + 1
        best = self._newest
        for s in self._slot_seq:  # only while buffering, at most once a block
            if lo <= s < best:
                best = s
        return best

    # -- arrivals ----------------------------------------------------------------------

    def insert(
        self,
        seq: int,
        payload: bytes,
        arrival_s: float,
        capture_s: float | None = None,
        redundant: bool = False,
        timestamp: int | None = None,
    ) -> Arrival:
        """Take one arrival. ``redundant`` marks a copy carried in a later packet (RED):
        it fills a gap if it can and is otherwise dropped without being counted."""
        if redundant:
            return self._insert_redundant(seq, payload, arrival_s, timestamp)
        ext = self._unwrap.unwrap(seq) + _EXT_BASE
        if self._floor is not None and ext < self._floor:
            self.counters.late += 1
            return Arrival.LATE
        if self._next is not None:
            if ext < self._next:
                behind = self._next - ext
                if behind <= min(self.rewind_blocks, self._missing_run) and self._count == 0:
                    # It missed its slot (by at most rewind_blocks, all of them concealed)
                    # and nothing is queued behind it: the stream runs behind playout.
                    # Play it next, later than planned, rather than conceal every block
                    # after it too.
                    self._next = ext
                    self.counters.reanchored += 1
                    self._store(ext, payload, arrival_s, capture_s, timestamp)
                    self.counters.accepted += 1
                    return Arrival.REANCHORED
                self.counters.late += 1
                return Arrival.LATE
            if ext >= self._next + self.capacity_blocks:
                self._clear()
                self._floor = ext
                self.counters.resyncs += 1
                self._store(ext, payload, arrival_s, capture_s, timestamp)
                return Arrival.RESYNC
        elif self._newest is not None and ext <= self._newest - self.capacity_blocks:
            self.counters.late += 1
            return Arrival.LATE
        idx = ext % self.capacity_blocks
        if self._slot_seq[idx] == ext:
            self.counters.duplicates += 1
            return Arrival.DUPLICATE
        self._store(ext, payload, arrival_s, capture_s, timestamp)
        self.counters.accepted += 1
        return Arrival.ACCEPTED

    def _insert_redundant(
        self, seq: int, payload: bytes, arrival_s: float, timestamp: int | None
    ) -> Arrival:
        if self._newest is None:
            return Arrival.DUPLICATE
        ext = self._newest + seq_diff(seq, self._newest & 0xFFFF)
        floor = self._next if self._next is not None else self._floor
        if (floor is not None and ext < floor) or ext <= self._newest - self.capacity_blocks:
            return Arrival.LATE
        if ext > self._newest or self._slot_seq[ext % self.capacity_blocks] == ext:
            return Arrival.DUPLICATE
        self._store(ext, payload, arrival_s, None, timestamp)
        self.counters.redundant_used += 1
        return Arrival.ACCEPTED

    def _store(
        self,
        ext: int,
        payload: bytes,
        arrival_s: float,
        capture_s: float | None,
        timestamp: int | None = None,
    ) -> None:
        idx = ext % self.capacity_blocks
        if self._slot_seq[idx] < 0:
            self._count += 1
        self._slot_seq[idx] = ext
        self._slot[idx] = PlayoutItem(
            Playout.NORMAL, ext & 0xFFFF, payload, capture_s, arrival_s, None, timestamp
        )
        if self._first_arrival_s is None:
            self._first_arrival_s = arrival_s
        if self._newest is None or ext > self._newest:
            self._newest = ext

    def _clear(self) -> None:
        self._slot_seq = [-1] * self.capacity_blocks
        self._slot = [None] * self.capacity_blocks
        self._reset_playout()

    def _take(self, ext: int) -> PlayoutItem | None:
        idx = ext % self.capacity_blocks
        if self._slot_seq[idx] != ext:
            return None
        item = self._slot[idx]
        self._slot_seq[idx] = -1
        self._slot[idx] = None
        self._count -= 1
        return item

    # -- playout -----------------------------------------------------------------------

    def pop(self, now_s: float) -> PlayoutItem:
        """Decide what to play for the block that starts playing now."""
        if self._next is None:
            if (
                self._first_arrival_s is None
                or self._count == 0
                or now_s - self._first_arrival_s < self.target_ms / 1000.0
            ):
                self.counters.idle += 1
                if self.counters.rebuffers:  # a gap in a call, not its start
                    self.counters.refill_silent += 1
                return _IDLE
            self._next = self._oldest()
        self._drop_overflow()
        item = self._take(self._next)
        self._next += 1
        if item is not None:
            self._missing_run = 0
            self.counters.played += 1
            return item
        self._missing_run += 1
        missing_seq = (self._next - 1) & 0xFFFF
        if self._count == 0 and self._missing_run >= self.max_conceal_blocks:
            # The stream has dried up: stop concealing and wait for it to restart.
            self.counters.rebuffers += 1
            self._floor = self._next
            self._reset_playout()
        self.counters.concealed += 1
        following = None
        if self._next is not None:
            idx = self._next % self.capacity_blocks
            if self._slot_seq[idx] == self._next:
                following = self._slot[idx].payload
        return PlayoutItem(Playout.CONCEAL, missing_seq, next_payload=following)

    def peek_next(self) -> bool:
        """True when the packet that ``pop`` would play next is already here."""
        if self._next is None:
            return False
        return self._slot_seq[self._next % self.capacity_blocks] == self._next

    def _drop_overflow(self) -> None:
        assert self._next is not None
        limit = self.target_blocks + max(4, self.target_blocks, self.overflow_margin_blocks)
        depth = self.depth_blocks
        if depth <= limit:
            return
        while self.depth_blocks > self.target_blocks and self._count:
            if self._take(self._next) is not None:
                self.counters.overflow_dropped += 1
            self._next += 1
