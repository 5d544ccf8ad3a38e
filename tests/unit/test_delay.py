"""Delay and drift estimation from arrival times (simulated clocks)."""

import numpy as np
import pytest

from rtai.delay import DelayManager, DriftEstimator
from rtai.playout import Operation, decide

RATE = 48000
BLOCK = 480
BLOCK_S = BLOCK / RATE


def feed(dm: DelayManager, delays_s, ppm=0.0, t0=0.0):
    """Packets every block of the sender's clock (stretched by ppm) with extra delays;
    ``t0`` continues an earlier feed (the sender's clock keeps counting)."""
    first = round(t0 / BLOCK_S)
    for k, d in enumerate(delays_s):
        i = first + k
        send = i * BLOCK_S * (1 + ppm * 1e-6)
        dm.on_arrival((i * BLOCK) & 0xFFFFFFFF, send + 0.02 + d)


@pytest.mark.parametrize("ppm", [-1000.0, -100.0, 0.0, 250.0, 1000.0])
def test_drift_is_estimated_through_jitter(ppm):
    rng = np.random.default_rng(3)
    est = DriftEstimator()
    for i in range(6000):  # 60 s
        sender = i * BLOCK_S
        est.update(sender, sender * (1 + ppm * 1e-6) + 0.03 + abs(rng.normal(0, 0.01)))
    assert abs(est.ppm - ppm) < 20


def test_a_route_change_does_not_look_like_drift():
    est = DriftEstimator()
    for i in range(6000):
        sender = i * BLOCK_S
        step = 0.04 if 20 <= sender < 30 else 0.0
        est.update(sender, sender + 0.03 + step)
    assert abs(est.ppm) < 20


def test_target_covers_all_but_the_safety_budget_of_the_jitter():
    rng = np.random.default_rng(1)
    for sigma in (0.002, 0.020):
        delays = np.abs(rng.normal(0, sigma, 3000))
        dm = DelayManager(RATE, BLOCK_S)  # normal: 0.7 % of the packets may be late
        feed(dm, delays)
        late = np.mean(delays * 1000.0 > dm.target_ms - dm.margin_ms)
        assert 0.001 <= late <= 0.008, (sigma, dm.target_ms, late)
        # And not far above what that takes (candidates are 1 ms apart).
        assert dm.target_ms <= np.percentile(delays, 99.7) * 1000.0 + dm.margin_ms + 1.0


def test_target_grows_at_once_and_shrinks_slowly():
    dm = DelayManager(RATE, BLOCK_S, shrink_ms_per_s=5.0)
    feed(dm, [0.001] * 1000)
    calm = dm.target_ms
    feed(dm, [0.001] * 5 + [0.08] * 20 + [0.001] * 5, t0=10.0)  # 200 ms of +80 ms
    assert dm.target_ms > calm + 60  # from the packets of the step on
    high, t, targets = dm.target_ms, 10.3, []
    for _ in range(30):  # then 30 s of calm, a target a second
        feed(dm, [0.001] * 100, t0=t)
        t += 1.0
        targets.append(dm.target_ms)
    steps = np.diff([high, *targets])
    assert np.all(steps >= -5.0 - 1e-9)  # never faster than shrink_ms_per_s
    assert targets[1] < high  # a lone step is not held for the whole window
    assert targets[-1] == pytest.approx(calm, abs=1.0)  # and it comes all the way back


def test_a_lasting_step_holds_the_target_until_it_ends():
    dm = DelayManager(RATE, BLOCK_S)
    feed(dm, [0.001] * 1000)
    calm = dm.target_ms
    feed(dm, [0.041] * 1000, t0=10.0)  # a route change: +40 ms for 10 s
    assert dm.target_ms >= 40.0
    feed(dm, [0.001] * 2500, t0=20.0)  # back: the target follows within the window
    assert dm.target_ms == pytest.approx(calm, abs=1.0)


def test_target_respects_user_limits():
    rng = np.random.default_rng(2)
    dm = DelayManager(RATE, BLOCK_S, min_ms=30, max_ms=40)
    feed(dm, np.abs(rng.normal(0, 0.001, 500)))
    assert dm.target_ms == 30
    feed(dm, np.abs(rng.normal(0, 0.05, 500)), t0=5.0)
    assert dm.target_ms == 40


def test_safety_orders_the_targets():
    rng = np.random.default_rng(4)
    delays = np.abs(rng.normal(0, 0.01, 3000))
    targets = []
    for safety in ("low", "normal", "high"):
        dm = DelayManager(RATE, BLOCK_S, safety=safety)
        feed(dm, delays)
        targets.append(dm.target_ms)
    assert targets[0] < targets[1] < targets[2]


def test_playout_delay_is_measured_from_the_earliest_possible_arrival():
    dm = DelayManager(RATE, BLOCK_S)
    feed(dm, [0.0] * 100)  # every packet 20 ms after sending: the reference
    ts = 50 * BLOCK
    assert dm.playout_delay_ms(ts, 50 * BLOCK_S + 0.02 + 0.035) == pytest.approx(35.0)


def test_decide_uses_the_resampler_inside_the_band_and_prefers_good_chunks():
    assert decide(3.0, 10.0, 1.0) is Operation.NORMAL
    assert decide(15.0, 10.0, 0.9) is Operation.ACCELERATE
    assert decide(-15.0, 10.0, 0.9) is Operation.STRETCH
    assert decide(15.0, 10.0, 0.1) is Operation.NORMAL  # busy audio: wait
    assert decide(35.0, 10.0, 0.1) is Operation.ACCELERATE  # far off: act anyway
