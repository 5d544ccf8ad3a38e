"""Unit tests for the pure impairment model (rtai.netsim.model), driven by a fake clock."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rtai.netsim.model import (
    ConfigError,
    Impairment,
    ImpairmentConfig,
    ImpairmentCounters,
    Released,
)

INTERVAL_S = 0.02  # one audio packet every 20 ms


def run_stream(
    config: ImpairmentConfig,
    n: int,
    *,
    interval_s: float = INTERVAL_S,
    size_bytes: int = 160,
) -> tuple[list[Released[int]], ImpairmentCounters]:
    """Offer packets 0..n-1 every interval_s, popping as a real loop would, then drain."""
    model: Impairment[int] = Impairment(config)
    out: list[Released[int]] = []
    for i in range(n):
        now_s = i * interval_s
        out.extend(model.pop_due(now_s))
        model.push(now_s, i, size_bytes)
    out.extend(model.pop_due(math.inf))
    assert model.pending == 0
    return out, model.counters


def lost_indices(released: list[Released[int]], n: int) -> list[int]:
    seen = {r.item for r in released}
    return [i for i in range(n) if i not in seen]


def mean_run_length(indices: list[int]) -> float:
    """Mean length of runs of consecutive integers in a sorted list."""
    runs = 0
    for k, i in enumerate(indices):
        if k == 0 or indices[k - 1] != i - 1:
            runs += 1
    return len(indices) / runs


def check_invariant(c: ImpairmentCounters, pending: int) -> None:
    dropped = c.dropped_loss + c.dropped_queue + c.dropped_overflow
    assert c.offered + c.duplicated == c.passed + dropped + pending


# -- defaults and determinism --------------------------------------------------------------


def test_default_config_passes_everything_immediately_and_in_order() -> None:
    released, counters = run_stream(ImpairmentConfig(), 100)
    assert [r.item for r in released] == list(range(100))
    assert all(r.release_s == r.item * INTERVAL_S for r in released)
    assert counters == ImpairmentCounters(offered=100, passed=100)


def test_same_seed_gives_identical_output() -> None:
    config = ImpairmentConfig(
        delay_ms=20, jitter_ms=15, loss_pct=10, burst_packets=3, reorder_pct=5,
        duplicate_pct=5, rate_kbps=100, seed=42,
    )  # fmt: skip
    assert run_stream(config, 2000) == run_stream(config, 2000)


def test_different_seeds_give_different_output() -> None:
    config = ImpairmentConfig(jitter_ms=10, loss_pct=10, seed=1)
    other = ImpairmentConfig(jitter_ms=10, loss_pct=10, seed=2)
    assert run_stream(config, 1000)[0] != run_stream(other, 1000)[0]


def test_reverse_direction_has_next_seed_and_independent_draws() -> None:
    config = ImpairmentConfig(loss_pct=20, seed=7)
    reverse = config.reverse_direction()
    assert reverse.seed == 8 and reverse.loss_pct == 20
    assert lost_indices(run_stream(config, 1000)[0], 1000) != lost_indices(
        run_stream(reverse, 1000)[0], 1000
    )


def test_jitter_draws_do_not_depend_on_loss_setting() -> None:
    """Common random numbers: a packet that survives gets the same jitter either way."""
    base = ImpairmentConfig(jitter_ms=10, seed=3)
    lossy = ImpairmentConfig(jitter_ms=10, loss_pct=30, seed=3)
    clean_times = {r.item: r.release_s for r in run_stream(base, 500, interval_s=1.0)[0]}
    for r in run_stream(lossy, 500, interval_s=1.0)[0]:
        assert r.release_s == clean_times[r.item]


# -- loss ----------------------------------------------------------------------------------


def test_random_loss_rate_within_tolerance() -> None:
    n = 100_000
    released, counters = run_stream(ImpairmentConfig(loss_pct=5, seed=11), n)
    assert abs(counters.dropped_loss / n - 0.05) < 0.003  # ~4 sigma
    assert counters.passed == len(released) == n - counters.dropped_loss
    # Independent loss: mean run of losses is 1 / (1 - p).
    assert mean_run_length(lost_indices(released, n)) == pytest.approx(1 / 0.95, rel=0.03)


@pytest.mark.parametrize("burst_packets", [0.0, 0.5, 1.0])
def test_burst_at_most_one_means_independent_loss(burst_packets: float) -> None:
    config = ImpairmentConfig(loss_pct=20, burst_packets=burst_packets, seed=5)
    assert not config.bursty
    released, _ = run_stream(config, 20_000)
    assert mean_run_length(lost_indices(released, 20_000)) == pytest.approx(1.25, rel=0.05)


@pytest.mark.parametrize(("loss_pct", "burst_packets"), [(10, 4), (2, 3), (30, 2.5)])
def test_bursty_loss_rate_and_mean_burst_length(loss_pct: float, burst_packets: float) -> None:
    n = 100_000
    config = ImpairmentConfig(loss_pct=loss_pct, burst_packets=burst_packets, seed=13)
    released, counters = run_stream(config, n)
    assert abs(counters.dropped_loss / n - loss_pct / 100) < 0.01
    assert mean_run_length(lost_indices(released, n)) == pytest.approx(burst_packets, rel=0.1)


def test_gilbert_elliott_parameters_follow_the_documented_derivation() -> None:
    p, r = ImpairmentConfig(loss_pct=10, burst_packets=4).gilbert_elliott()
    assert r == pytest.approx(1 / 4)
    assert p == pytest.approx(0.1 / (4 * 0.9))
    assert p / (p + r) == pytest.approx(0.10)  # stationary loss rate


def test_full_loss_drops_everything() -> None:
    released, counters = run_stream(ImpairmentConfig(loss_pct=100), 500)
    assert released == [] and counters.dropped_loss == 500


def test_bursty_loss_at_its_maximum_is_accepted() -> None:
    config = ImpairmentConfig(loss_pct=80, burst_packets=4, seed=1)  # max is 100*4/5 = 80
    config.validate()
    _, counters = run_stream(config, 50_000)
    assert abs(counters.dropped_loss / 50_000 - 0.8) < 0.02


# -- delay and jitter ----------------------------------------------------------------------


def test_fixed_delay_is_added_exactly() -> None:
    released, _ = run_stream(ImpairmentConfig(delay_ms=35), 50)
    for r in released:
        assert r.release_s == pytest.approx(r.item * INTERVAL_S + 0.035)


def test_jitter_never_reorders_when_reorder_is_zero() -> None:
    config = ImpairmentConfig(delay_ms=10, jitter_ms=60, seed=9)
    released, counters = run_stream(config, 5000, interval_s=0.001)
    assert [r.item for r in released] == list(range(5000))
    times = [r.release_s for r in released]
    assert times == sorted(times)
    assert all(r.release_s >= r.item * 0.001 + 0.010 for r in released)
    assert counters.reordered == 0


def test_jitter_is_half_normal_on_top_of_the_delay() -> None:
    config = ImpairmentConfig(delay_ms=5, jitter_ms=10, seed=4)
    released, _ = run_stream(config, 20_000, interval_s=1.0)  # sparse: no FIFO clamping
    extra_ms = [(r.release_s - r.item * 1.0 - 0.005) * 1000 for r in released]
    assert min(extra_ms) >= -1e-6
    assert sum(extra_ms) / len(extra_ms) == pytest.approx(10 * math.sqrt(2 / math.pi), rel=0.03)


# -- reordering and duplication ------------------------------------------------------------


def observed_reordered(released: list[Released[int]]) -> int:
    """Packets released after some packet with a higher index (first copies only)."""
    count, highest, seen = 0, -1, set()
    for r in released:
        if r.item in seen:
            continue
        seen.add(r.item)
        if r.item < highest:
            count += 1
        highest = max(highest, r.item)
    return count


def test_reorder_fraction_and_counter_match_what_happened() -> None:
    n = 20_000
    released, counters = run_stream(ImpairmentConfig(reorder_pct=10, seed=21), n)
    assert len(released) == n
    assert counters.reordered == observed_reordered(released)
    assert abs(counters.reordered / n - 0.10) < 0.01


def test_held_packet_without_overtaker_is_released_at_timeout_uncounted() -> None:
    config = ImpairmentConfig(delay_ms=10, reorder_pct=100)
    model: Impairment[str] = Impairment(config)
    model.push(0.0, "a", 100)  # held, and no later packet ever comes
    expected_s = 0.010 + config.reorder_timeout_ms / 1000
    assert model.next_release_s() == pytest.approx(expected_s)
    assert model.pop_due(expected_s - 1e-6) == []
    released = model.pop_due(math.inf)
    assert [r.item for r in released] == ["a"]
    assert released[0].release_s == pytest.approx(expected_s)
    assert model.counters.reordered == 0  # nobody overtook it


def test_held_packet_is_released_after_overtaker_within_timeout() -> None:
    # Find a seed whose first packet is held and second is not.
    config = ImpairmentConfig(delay_ms=10, reorder_pct=50)
    for seed in range(100):
        config = ImpairmentConfig(delay_ms=10, reorder_pct=50, seed=seed)
        model: Impairment[str] = Impairment(config)
        model.push(0.0, "first", 100)
        model.push(0.02, "second", 100)
        if model.counters.reordered == 1:
            break
    else:
        pytest.fail("no seed with the first packet held in 100 tries")
    released = model.pop_due(math.inf)
    assert [r.item for r in released] == ["second", "first"]
    assert released[0].release_s == released[1].release_s == pytest.approx(0.030)


def test_duplicate_fraction_and_copies_are_adjacent() -> None:
    n = 20_000
    released, counters = run_stream(ImpairmentConfig(duplicate_pct=10, jitter_ms=5, seed=8), n)
    assert len(released) == n + counters.duplicated == counters.passed
    assert abs(counters.duplicated / n - 0.10) < 0.01
    doubles = [i for i in range(1, len(released)) if released[i].item == released[i - 1].item]
    assert len(doubles) == counters.duplicated
    for i in doubles:
        assert released[i].release_s == released[i - 1].release_s


def test_all_impairments_together_keep_counters_consistent() -> None:
    config = ImpairmentConfig(
        delay_ms=30, jitter_ms=20, loss_pct=5, burst_packets=2, reorder_pct=5,
        duplicate_pct=5, rate_kbps=64, seed=99,
    )  # fmt: skip
    released, counters = run_stream(config, 10_000)
    check_invariant(counters, 0)
    assert counters.passed == len(released)
    assert counters.reordered == observed_reordered(released)


# -- rate limit ----------------------------------------------------------------------------


def test_rate_limit_spaces_packets_by_serialization_time() -> None:
    model: Impairment[int] = Impairment(ImpairmentConfig(rate_kbps=64))
    for i in range(5):
        model.push(0.0, i, 160)  # 160 B at 64 kbit/s = 20 ms of link time each
    times = [r.release_s for r in model.pop_due(math.inf)]
    assert times == pytest.approx([0.02, 0.04, 0.06, 0.08, 0.10])


def test_rate_limit_under_capacity_adds_only_serialization_delay() -> None:
    released, counters = run_stream(ImpairmentConfig(rate_kbps=64), 1000, size_bytes=100)
    assert counters.dropped_queue == 0
    for r in released:
        assert r.release_s == pytest.approx(r.item * INTERVAL_S + 100 * 8 / 64_000)


def test_rate_queue_tail_drops_beyond_its_bound() -> None:
    model: Impairment[int] = Impairment(ImpairmentConfig(rate_kbps=64, queue_ms=210))
    for i in range(100):
        model.push(0.0, i, 160)
    released = model.pop_due(math.inf)
    # Each packet is 20 ms of link time; the 11th would make the backlog 220 ms > 210 ms.
    assert [r.item for r in released] == list(range(10))
    assert model.counters.dropped_queue == 90


def test_idle_link_accepts_a_packet_longer_than_the_queue() -> None:
    model: Impairment[int] = Impairment(ImpairmentConfig(rate_kbps=8, queue_ms=10))
    assert model.push(0.0, 0, 1500) == 1  # 1.5 s of link time
    assert model.push(0.1, 1, 10) == 0  # queue full behind it
    assert model.pop_due(math.inf)[0].release_s == pytest.approx(1.5)


def test_memory_cap_drops_and_counts_overflow() -> None:
    model: Impairment[int] = Impairment(ImpairmentConfig(delay_ms=1000), max_pending_packets=10)
    for i in range(25):
        model.push(i * 0.001, i, 100)
    assert model.pending == 10 and model.counters.dropped_overflow == 15
    check_invariant(model.counters, model.pending)
    model2: Impairment[int] = Impairment(ImpairmentConfig(delay_ms=1000), max_pending_bytes=1000)
    for i in range(25):
        model2.push(i * 0.001, i, 300)
    assert model2.pending == 3 and model2.pending_bytes == 900


# -- validation ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"delay_ms": -1}, "delay_ms"),
        ({"jitter_ms": math.nan}, "jitter_ms"),
        ({"loss_pct": 100.5}, "loss_pct"),
        ({"loss_pct": -0.1}, "loss_pct"),
        ({"burst_packets": -2}, "burst_packets"),
        ({"reorder_pct": 101}, "reorder_pct"),
        ({"duplicate_pct": math.inf}, "duplicate_pct"),
        ({"rate_kbps": -64}, "rate_kbps"),
        ({"seed": -1}, "seed"),
        ({"seed": 1.5}, "seed"),
        ({"queue_ms": 0}, "queue_ms"),
        ({"reorder_timeout_ms": -5}, "reorder_timeout_ms"),
        ({"delay_ms": "10"}, "delay_ms"),
        ({"loss_pct": 70, "burst_packets": 2}, "loss_pct"),  # max is 66.7 for bursts of 2
        ({"loss_pct": 100, "burst_packets": 3}, "loss_pct"),
    ],
)
def test_validate_rejects_out_of_range_values(kwargs: dict, field: str) -> None:
    config = ImpairmentConfig(**kwargs)
    with pytest.raises(ConfigError) as info:
        config.validate()
    assert isinstance(info.value, ValueError)
    assert info.value.field == field
    message = str(info.value)
    assert field in message and "\n" not in message


def test_model_refuses_an_invalid_config() -> None:
    with pytest.raises(ValueError, match="loss_pct"):
        Impairment(ImpairmentConfig(loss_pct=200))


def test_push_rejects_negative_size() -> None:
    with pytest.raises(ValueError, match="size_bytes"):
        Impairment(ImpairmentConfig()).push(0.0, None, -1)


# -- property: never raises, counters always balance ----------------------------------------

pct = st.floats(min_value=0, max_value=100, allow_nan=False)
ms = st.floats(min_value=0, max_value=500, allow_nan=False)


@st.composite
def valid_configs(draw: st.DrawFn) -> ImpairmentConfig:
    burst = draw(st.one_of(st.just(0.0), st.floats(min_value=0, max_value=50)))
    loss = draw(pct)
    if burst > 1:
        loss = min(loss, 100 * burst / (burst + 1))
    return ImpairmentConfig(
        delay_ms=draw(ms),
        jitter_ms=draw(ms),
        loss_pct=loss,
        burst_packets=burst,
        reorder_pct=draw(pct),
        duplicate_pct=draw(pct),
        rate_kbps=draw(st.one_of(st.just(0.0), st.floats(min_value=0.001, max_value=1e6))),
        seed=draw(st.integers(min_value=0, max_value=2**64)),
        queue_ms=draw(st.floats(min_value=0.001, max_value=5000)),
        reorder_timeout_ms=draw(st.floats(min_value=0.001, max_value=1000)),
    )


@settings(max_examples=200, deadline=None)
@given(
    config=valid_configs(),
    steps=st.lists(
        st.tuples(
            st.floats(min_value=0, max_value=0.5, allow_nan=False),
            st.integers(min_value=0, max_value=65535),
            st.booleans(),
        ),
        max_size=60,
    ),
)
def test_process_never_raises_and_counters_balance(
    config: ImpairmentConfig, steps: list[tuple[float, int, bool]]
) -> None:
    config.validate()
    model: Impairment[int] = Impairment(config, max_pending_packets=50)
    now_s, last_release_s = 0.0, -math.inf
    for i, (dt_s, size_bytes, pop) in enumerate(steps):
        now_s += dt_s
        copies = model.push(now_s, i, size_bytes)
        assert copies in (0, 1, 2)
        if pop:
            for r in model.pop_due(now_s):
                assert last_release_s <= r.release_s <= now_s
                last_release_s = r.release_s
        check_invariant(model.counters, model.pending)
        next_s = model.next_release_s()
        assert (next_s is None) == (model.pending == 0)
    for r in model.pop_due(math.inf):
        assert r.release_s >= last_release_s
        last_release_s = r.release_s
    assert model.pending == 0 and model.pending_bytes == 0
    check_invariant(model.counters, 0)
    assert model.counters.offered == len(steps)
