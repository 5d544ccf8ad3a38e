"""The receive jitter buffer, driven with a fake clock (seconds as plain floats)."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rtai.jitter import Arrival, JitterBuffer, Playout
from rtai.rtp.seq import seq_add

BLOCK_FRAMES = 480
RATE_HZ = 48000
BLOCK_S = BLOCK_FRAMES / RATE_HZ  # 10 ms
TARGET_MS = 30.0  # three blocks
EPS_S = 1e-4


def make(target_ms=TARGET_MS, capacity=64, max_conceal=None) -> JitterBuffer:
    return JitterBuffer(BLOCK_FRAMES, RATE_HZ, target_ms, capacity, max_conceal)


def payload(seq: int, tag: int = 0) -> bytes:
    """A payload that names the sequence number it was sent with (and a lap tag)."""
    return seq.to_bytes(2, "big") + tag.to_bytes(4, "big")


def seq_of(p: bytes) -> int:
    return int.from_bytes(p[:2], "big")


def play_stream(jb: JitterBuffer, seqs, start_s=0.0, extra_pops=0):
    """Packet i of ``seqs`` arrives at tick i; a pop follows each arrival in the same tick."""
    items = []
    for i, s in enumerate(seqs):
        t = start_s + i * BLOCK_S
        if s is not None:
            jb.insert(s, payload(s), t)
        items.append(jb.pop(t + EPS_S))
    for j in range(extra_pops):
        items.append(jb.pop(start_s + (len(seqs) + j) * BLOCK_S + EPS_S))
    return items


def kinds(items):
    return [it.kind for it in items]


def normal_seqs(items):
    return [it.seq for it in items if it.kind is Playout.NORMAL]


def assert_payloads_match_seqs(items):
    for it in items:
        if it.kind is Playout.NORMAL:
            assert seq_of(it.payload) == it.seq


STARTS = [0, 1, 100, 1000, 65533]


# -- start of playout --------------------------------------------------------------------


def test_nothing_to_play_before_any_packet_is_idle():
    jb = make()
    assert jb.pop(0.0).kind is Playout.IDLE
    assert jb.counters.idle == 1
    assert not jb.playing


@pytest.mark.parametrize("start", STARTS)
def test_playout_waits_the_target_delay_then_plays_the_first_packet(start):
    jb = make()
    assert jb.insert(start, payload(start), 5.0) is Arrival.ACCEPTED
    assert jb.pop(5.0).kind is Playout.IDLE
    assert jb.pop(5.0 + TARGET_MS / 1000 - 1e-3).kind is Playout.IDLE
    item = jb.pop(5.0 + TARGET_MS / 1000 + 1e-3)
    assert item.kind is Playout.NORMAL
    assert item.seq == start
    assert item.payload == payload(start)
    assert item.arrival_s == 5.0


@pytest.mark.parametrize("start", STARTS)
def test_in_order_stream_plays_in_order_without_concealment(start):
    jb = make()
    seqs = [seq_add(start, i) for i in range(50)]
    items = play_stream(jb, seqs)
    first = kinds(items).index(Playout.NORMAL)
    assert kinds(items)[:first] == [Playout.IDLE] * first
    # Playout starts once the target delay has passed since the first arrival.
    assert first == round(TARGET_MS / 1000 / BLOCK_S)
    assert kinds(items)[first:] == [Playout.NORMAL] * (50 - first)
    assert normal_seqs(items) == seqs[: 50 - first]
    assert jb.counters.concealed == 0 and jb.counters.late == 0
    assert_payloads_match_seqs(items)


def test_capture_time_is_passed_through_to_playout():
    jb = make(target_ms=0.0)
    jb.insert(7, b"x", 1.0, capture_s=0.75)
    item = jb.pop(1.0)
    assert (item.kind, item.capture_s, item.arrival_s) == (Playout.NORMAL, 0.75, 1.0)


# -- reordering, loss, lateness, duplicates ----------------------------------------------


@pytest.mark.parametrize("start", STARTS)
def test_reordered_packets_within_the_window_play_in_order(start):
    order = [0, 2, 1, 3, 5, 4, 6, 9, 7, 8, 10, 11, 13, 12, 14, 15, 16, 17, 18, 19]
    jb = make()
    items = play_stream(jb, [seq_add(start, i) for i in order], extra_pops=3)
    assert normal_seqs(items) == [seq_add(start, i) for i in range(20)]
    assert jb.counters.late == 0 and jb.counters.concealed == 0
    assert_payloads_match_seqs(items)


def test_missing_packet_is_concealed_and_a_late_arrival_is_never_played():
    jb = make()
    start = 500
    items = play_stream(jb, [start + i if i != 5 else None for i in range(12)])
    conceal = [it for it in items if it.kind is Playout.CONCEAL]
    assert [it.seq for it in conceal] == [start + 5]
    assert jb.counters.concealed == 1
    # The missing packet turns up after its slot was played: it is late.
    assert jb.insert(start + 5, payload(start + 5), 1.0) is Arrival.LATE
    assert jb.counters.late == 1
    rest = [jb.pop(1.0 + k * BLOCK_S) for k in range(10)]
    assert start + 5 not in normal_seqs(rest)
    assert normal_seqs(items + rest) == [start + i for i in range(12) if i != 5]


def test_packets_reordered_across_the_wrap_before_playout_all_play_in_order():
    jb = make()
    for s in (1, 0, 65535, 2):
        assert jb.insert(s, payload(s), 0.0) is Arrival.ACCEPTED
    items = [jb.pop(1.0 + k * BLOCK_S) for k in range(4)]
    assert [(it.kind, it.seq) for it in items] == [(Playout.NORMAL, s) for s in (65535, 0, 1, 2)]


def test_duplicate_is_counted_and_played_once():
    jb = make()
    assert jb.insert(10, payload(10), 0.0) is Arrival.ACCEPTED
    assert jb.insert(11, payload(11), 0.0) is Arrival.ACCEPTED
    assert jb.insert(11, payload(11), 0.001) is Arrival.DUPLICATE
    assert jb.counters.duplicates == 1
    assert jb.counters.accepted == 2
    items = [jb.pop(1.0 + k * BLOCK_S) for k in range(4)]
    assert normal_seqs(items) == [10, 11]


def test_duplicate_of_an_already_played_packet_is_late_not_replayed():
    jb = make(target_ms=0.0)
    jb.insert(10, payload(10), 0.0)
    assert jb.pop(0.0).seq == 10
    assert jb.insert(10, payload(10), 0.001) is Arrival.LATE
    assert jb.pop(0.01).kind is Playout.CONCEAL


def test_sequence_wrap_plays_continuously():
    jb = make()
    seqs = [seq_add(65530, i) for i in range(15)]
    items = play_stream(jb, seqs, extra_pops=3)
    assert normal_seqs(items) == seqs
    assert 65535 in normal_seqs(items) and 0 in normal_seqs(items)
    assert jb.counters.concealed == 0


# -- rebuffering, restarts, overflow -----------------------------------------------------


def test_stream_that_dries_up_rebuffers_and_restarts_with_the_target_delay():
    jb = make(max_conceal=4)
    items = play_stream(jb, list(range(200, 210)))
    assert normal_seqs(items) == list(range(200, 207))
    # Drain what is buffered, then the stream has stopped.
    t = 10 * BLOCK_S + EPS_S
    tail = []
    while True:
        item = jb.pop(t)
        t += BLOCK_S
        if item.kind is not Playout.NORMAL:
            tail.append(item)
            break
    tail += [jb.pop(t + k * BLOCK_S) for k in range(6)]
    t += 6 * BLOCK_S
    assert kinds(tail) == [Playout.CONCEAL] * 4 + [Playout.IDLE] * 3
    assert jb.counters.rebuffers == 1
    assert jb.counters.refill_silent == 3  # the gap is counted; the start was not
    assert not jb.playing

    # Packets resume: IDLE again for the target delay, then normal playout.
    resume = 230
    jb.insert(resume, payload(resume), t)
    assert jb.pop(t + EPS_S).kind is Playout.IDLE
    jb.insert(resume + 1, payload(resume + 1), t + BLOCK_S)
    assert jb.pop(t + TARGET_MS / 1000 - 1e-3).kind is Playout.IDLE
    item = jb.pop(t + TARGET_MS / 1000 + 1e-3)
    assert (item.kind, item.seq) == (Playout.NORMAL, resume)


def test_default_rebuffer_threshold_is_200_ms_of_audio():
    assert make().max_conceal_blocks == 20


def test_concealment_does_not_rebuffer_while_packets_are_still_buffered():
    jb = make(max_conceal=2, target_ms=100.0)  # 10 blocks: the gap is no overflow
    jb.insert(0x100, payload(0x100), 0.0)
    jb.insert(0x100 + 6, payload(0x100 + 6), 0.0)
    items = [jb.pop(1.0 + k * BLOCK_S) for k in range(8)]
    assert kinds(items) == [Playout.NORMAL] + [Playout.CONCEAL] * 5 + [Playout.NORMAL] + [
        Playout.CONCEAL
    ]
    assert jb.counters.rebuffers == 0


def test_big_sequence_jump_resyncs_and_old_packets_are_dropped():
    jb = make(capacity=64)
    items = play_stream(jb, [300 + i for i in range(8)])
    assert jb.playing
    assert 307 not in normal_seqs(items)  # still buffered
    t = 1.0
    jump = 300 + 5000
    assert jb.insert(jump, payload(jump), t) is Arrival.RESYNC
    assert jb.counters.resyncs == 1
    # A straggler from before the jump is late now.
    assert jb.insert(308, payload(308), t) is Arrival.LATE
    after = []
    for k in range(10):
        now = t + k * BLOCK_S
        jb.insert(jump + k + 1, payload(jump + k + 1), now)
        after.append(jb.pop(now + EPS_S))
    played = normal_seqs(after)
    assert 307 not in played and 308 not in played
    assert played[0] == jump
    assert played == list(range(jump, jump + len(played)))
    assert after[0].kind is Playout.IDLE  # the target delay applies again


def test_overflow_drops_oldest_back_to_the_target():
    jb = make(target_ms=TARGET_MS)
    target_blocks = jb.target_blocks
    assert target_blocks == 3
    jb.insert(1000, payload(1000), 0.0)
    assert jb.pop(0.05).seq == 1000
    # A fast sender: a burst far above target + max(4, target) = 7 blocks.
    newest = 1012
    for s in range(1001, newest + 1):
        assert jb.insert(s, payload(s), 0.06) is Arrival.ACCEPTED
    item = jb.pop(0.07)
    assert item.kind is Playout.NORMAL
    assert item.seq == newest - target_blocks + 1
    assert jb.counters.overflow_dropped == (newest - target_blocks + 1) - 1001
    assert jb.depth_blocks == target_blocks - 1
    rest = [jb.pop(0.08 + k * BLOCK_S) for k in range(2)]
    assert normal_seqs(rest) == [newest - 1, newest]


def test_moderate_backlog_below_the_overflow_limit_is_kept():
    jb = make(target_ms=TARGET_MS)
    jb.insert(1000, payload(1000), 0.0)
    jb.pop(0.05)
    for s in range(1001, 1008):  # depth 7 = target + 4: at the limit, not over
        jb.insert(s, payload(s), 0.06)
    items = [jb.pop(0.07 + k * BLOCK_S) for k in range(7)]
    assert normal_seqs(items) == list(range(1001, 1008))
    assert jb.counters.overflow_dropped == 0


def test_depth_and_buffered_ms_count_blocks_waiting():
    jb = make()
    assert jb.depth_blocks == 0 and jb.buffered_ms == 0.0
    for s in (40, 41, 43):
        jb.insert(s, payload(s), 0.0)
    assert jb.depth_blocks == 4
    assert jb.buffered_ms == pytest.approx(40.0)


# -- a ring slot only ever plays the packet stored in it ---------------------------------


def test_slot_reused_by_a_later_lap_while_buffering_never_plays_the_old_payload():
    capacity = 16
    jb = make(capacity=capacity)
    s = 2000
    jb.insert(s, payload(s, tag=1), 0.0)
    jb.insert(s + capacity, payload(s + capacity, tag=2), 0.0)
    items = [jb.pop(1.0 + k * BLOCK_S) for k in range(capacity + 2)]
    played = [it for it in items if it.kind is Playout.NORMAL]
    assert [(it.seq, it.payload) for it in played] == [(s + capacity, payload(s + capacity, 2))]


def test_packet_one_ring_lap_ahead_while_playing_resyncs_instead_of_aliasing():
    capacity = 16
    jb = make(capacity=capacity, target_ms=0.0)
    s = 3000
    jb.insert(s - 1, payload(s - 1), 0.0)
    assert jb.pop(0.0).seq == s - 1
    jb.insert(s, payload(s, tag=1), 0.0)
    # s + capacity lands in s's slot: it must not be played as s, nor s as it.
    assert jb.insert(s + capacity, payload(s + capacity, tag=2), 0.0) is Arrival.RESYNC
    items = [jb.pop(0.01 + k * BLOCK_S) for k in range(capacity + 2)]
    played = [(it.seq, it.payload) for it in items if it.kind is Playout.NORMAL]
    assert played == [(s + capacity, payload(s + capacity, tag=2))]


def test_slot_skipped_by_playout_then_refilled_a_lap_later_plays_only_the_new_packet():
    capacity = 8
    jb = make(capacity=capacity, max_conceal=100)  # target 3 blocks, overflow above 7
    s = 4000
    jb.insert(s, payload(s), 0.0)
    assert jb.pop(0.05).seq == s
    jb.insert(s + 3, payload(s + 3), 0.05)  # s+1, s+2 never arrive
    items = [jb.pop(0.05 + BLOCK_S * k) for k in range(1, 4)]
    assert kinds(items) == [Playout.CONCEAL, Playout.CONCEAL, Playout.NORMAL]
    # s+1 + capacity reuses the slot that playout skipped when s+1 was missing.
    late_lap = s + 1 + capacity
    assert jb.insert(late_lap, payload(late_lap, tag=9), 0.1) is Arrival.ACCEPTED
    more = [jb.pop(0.1 + BLOCK_S * k) for k in range(capacity)]
    played = [(it.seq, it.payload) for it in more if it.kind is Playout.NORMAL]
    assert played == [(late_lap, payload(late_lap, tag=9))]


# -- properties --------------------------------------------------------------------------

starts = st.sampled_from([0, 1, 2, 65535, 65534, 65500]) | st.integers(0, 65535)


@given(
    starts,
    st.sets(st.integers(0, 39), min_size=1),
    st.randoms(use_true_random=False),
)
@settings(max_examples=200)
def test_any_arrival_order_before_playout_plays_each_packet_once_in_order(start, offsets, rnd):
    seqs = [seq_add(start, o) for o in sorted(offsets)]
    arrival = list(seqs)
    rnd.shuffle(arrival)
    jb = make(target_ms=400.0, capacity=64)  # 40 blocks: no overflow drop for a span of 40
    for i, s in enumerate(arrival):
        assert jb.insert(s, payload(s), i * 1e-4) is Arrival.ACCEPTED
    items = [jb.pop(1.0 + k * BLOCK_S) for k in range(45)]
    assert items[0].kind is Playout.NORMAL
    assert normal_seqs(items) == seqs
    assert_payloads_match_seqs(items)
    span = max(offsets) - min(offsets) + 1
    assert kinds(items)[:span].count(Playout.CONCEAL) == span - len(seqs)


ops = st.lists(
    st.one_of(
        st.tuples(st.just("insert"), st.integers(-40, 80)),
        st.tuples(st.just("pop"), st.integers(1, 3)),
    ),
    max_size=120,
)


@given(starts, ops, st.integers(4, 32))
@settings(max_examples=200)
def test_random_traffic_never_plays_a_payload_under_another_seq_or_twice(start, script, capacity):
    """Whatever arrives in whatever order, every played item carries its own payload,
    no packet (identified by a unique tag) is played twice, and played sequence numbers
    only move forward."""
    jb = make(capacity=capacity, target_ms=20.0, max_conceal=5)
    t = 0.0
    head = 0  # the sender's newest offset, moves forward as time passes
    tag = 0
    played_tags = set()
    last_played = None
    for op, n in script:
        if op == "insert":
            off = max(0, head + n)
            tag += 1
            s = seq_add(start, off)
            jb.insert(s, payload(s, tag), t)
            head = max(head, off)
        else:
            for _ in range(n):
                t += BLOCK_S
                item = jb.pop(t)
                if item.kind is Playout.NORMAL:
                    assert seq_of(item.payload) == item.seq
                    ptag = int.from_bytes(item.payload[2:], "big")
                    assert ptag not in played_tags
                    played_tags.add(ptag)
                    if last_played is not None:
                        assert (item.seq - last_played) % 65536 < 32768
                        assert item.seq != last_played
                    last_played = item.seq


def test_stream_running_just_behind_playout_is_reanchored_not_concealed_forever():
    # Target 0: playout starts at the first pop after the first packet. Then every
    # packet arrives just after its slot (the sender's phase slipped behind ours).
    jb = make(target_ms=0.0)
    jb.insert(100, payload(100), 0.0)
    assert jb.pop(EPS_S).seq == 100
    items = []
    for k in range(1, 40):
        t = k * BLOCK_S
        items.append(jb.pop(t))  # slot for 100 + k comes first ...
        jb.insert(100 + k, payload(100 + k), t + EPS_S)  # ... its packet just after
    assert jb.counters.reanchored == 1
    assert jb.counters.late == 0
    # One concealed block, then everything plays, one block later than before.
    assert kinds(items).count(Playout.CONCEAL) == 1
    assert normal_seqs(items) == list(range(101, 139))
    assert_payloads_match_seqs(items)


def test_a_late_packet_with_others_queued_behind_it_is_dropped_not_reanchored():
    jb = make(target_ms=0.0)
    jb.insert(10, payload(10), 0.0)
    jb.pop(EPS_S)
    assert jb.pop(BLOCK_S).kind is Playout.CONCEAL  # 11 missing
    jb.insert(12, payload(12), BLOCK_S + EPS_S)
    assert jb.insert(11, payload(11), BLOCK_S + 2 * EPS_S) is Arrival.LATE
    assert jb.counters.reanchored == 0
    assert jb.pop(2 * BLOCK_S).seq == 12
