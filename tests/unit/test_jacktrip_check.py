"""The sample-exactness checks of the JackTrip interop tests, on made-up recordings."""

import numpy as np

from rtai.testing.jacktrip_check import (
    block_delays,
    exact_window_fraction,
    exact_windows,
    longest_exact_run,
    speech_codes,
)

RATE = 8000


def _sent() -> np.ndarray:
    return speech_codes(RATE, 3.0, 0).astype(np.int32)


def test_a_delayed_copy_is_one_exact_run_and_every_window_exact():
    sent = _sent()
    got = np.concatenate([np.zeros(300, np.int32), sent, np.zeros(500, np.int32)])
    assert longest_exact_run(sent, got) == (len(sent), 300)
    rows = exact_windows(sent, got, RATE, settle_s=0.0)
    assert rows and all(ok for _, ok in rows)
    assert exact_window_fraction(sent, got, RATE, settle_s=0.0) == 1.0


def test_one_changed_sample_breaks_the_run_and_only_its_windows():
    sent = _sent()
    got = np.concatenate([np.zeros(300, np.int32), sent])
    k = int(1.6 * RATE)
    got[300 + k] += 1
    run, lag = longest_exact_run(sent, got)
    assert lag == 300 and run == max(k, len(sent) - k - 1)
    missed = [t for t, ok in exact_windows(sent, got, RATE, settle_s=0.0) if not ok]
    assert missed and all(t <= k / RATE <= t + 0.25 for t in missed)


def test_a_slip_that_shortens_the_delay_is_found_only_when_searching_back():
    """64 samples lost on the way two thirds in: the rest arrives 64 samples early."""
    sent = _sent()
    cut = 2 * len(sent) // 3
    got = np.concatenate([np.zeros(300, np.int32), sent[:cut], sent[cut + 64 :]])
    # the whole-signal lag is the longer first part's (300): the rest is earlier
    late = cut / RATE
    fwd = [ok for t, ok in exact_windows(sent, got, RATE, settle_s=0.0) if t > late]
    rows = exact_windows(sent, got, RATE, settle_s=0.0, search_back_s=0.05)
    back = [ok for t, ok in rows if t > late]
    early = [ok for t, ok in rows if t + 0.25 <= late]
    assert fwd and not any(fwd)
    assert back and all(back) and early and all(early)


def test_settling_time_leaves_out_the_first_windows():
    sent = _sent()
    rows = exact_windows(sent, sent, RATE, settle_s=1.0)
    assert rows and min(t for t, _ in rows) >= 1.0


def test_pieces_are_found_at_their_own_delay_across_a_lost_and_a_repeated_period():
    sent = _sent()
    n, a, b = 128, 8000, 16000  # one period lost at sent[a], one repeated at sent[b]
    got = np.concatenate(
        [np.zeros(500, np.int32), sent[:a], sent[a + n : b], sent[b - n : b], sent[b:]]
    )
    rows = block_delays(sent, got, 0, 1000)
    found = {d for _, d in rows if d is not None}
    assert found == {500, 500 - n}
    assert sum(d is None for _, d in rows) <= 4  # only pieces cut by a change
    assert all(d == 500 for p, d in rows if p + 64 <= a)
    assert all(d == 500 - n for p, d in rows if a + n <= p and p + 64 <= b - n)


def test_a_sample_off_by_one_code_leaves_its_piece_unfound():
    sent = _sent()
    got = sent.copy()
    loud = max(block_delays(sent, got, 0, 10), key=lambda r: abs(sent[r[0]]))[0]
    got[loud] += 1
    rows = dict(block_delays(sent, got, 0, 10))
    assert rows[loud] is None and sum(d is None for d in rows.values()) == 1
