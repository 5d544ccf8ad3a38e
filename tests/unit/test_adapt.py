"""Sender adaptation from RTCP receiver reports, on a simulated clock."""

from rtai.adapt import Limits, PathAdapter
from rtai.codecs import EncoderSettings


def opus_adapter(**kw) -> PathAdapter:
    limits = Limits(max_bitrate_bps=32000, min_bitrate_bps=12000, **kw)
    return PathAdapter(EncoderSettings(bitrate_bps=32000), limits)


def feed(adapter, reports, start_s=0.0):
    d = None
    for i, (loss, rtt) in enumerate(reports):
        d = adapter.on_report(start_s + i, loss, 2.0, rtt)
    return d


def test_clean_path_keeps_fec_off_and_full_bitrate():
    d = feed(opus_adapter(), [(0.0, 40.0)] * 10)
    assert not d.settings.fec and d.settings.loss_pct == 0
    assert d.settings.bitrate_bps == 32000 and d.redundancy == 0


def test_random_loss_turns_on_fec_and_the_loss_hint_without_cutting_bitrate():
    a = opus_adapter()
    d = feed(a, [(0.10, 40.0)] * 10)
    assert d.settings.fec and d.settings.loss_pct == 10  # the hint is the average loss
    assert d.settings.bitrate_bps == 32000  # RTT flat: not congestion
    assert d.settings.max_bandwidth == "wb"  # FEC under real loss: bits for speech
    assert a.version > 0


def test_steady_twenty_percent_random_loss_is_not_taken_for_congestion():
    a = opus_adapter()
    rng = [0.2, 0.27, 0.14, 0.3, 0.18, 0.22, 0.26, 0.15] * 4  # reports scatter around 20 %
    d = feed(a, [(x, 40.0) for x in rng])
    assert not d.congested and d.settings.bitrate_bps == 32000


def test_protection_rises_at_once_and_falls_slowly():
    a = opus_adapter()
    feed(a, [(0.20, 40.0)])
    assert a.decision.settings.fec  # on at the first report of loss
    d = feed(a, [(0.0, 40.0)] * 5, start_s=1)
    assert d.settings.fec  # still on while the loss estimate decays
    d = feed(a, [(0.0, 40.0)] * 30, start_s=6)
    assert d.settings.loss_pct == 0 and not d.settings.fec
    assert d.settings.max_bandwidth == "fb"


def test_loss_with_growing_rtt_is_congestion_and_lowers_the_bitrate_to_the_floor():
    a = opus_adapter()
    d = feed(a, [(0.0, 40.0)] + [(0.08, 120.0)] * 20)
    assert d.congested
    assert d.settings.bitrate_bps == 12000


def test_bitrate_recovers_slowly_after_congestion():
    a = opus_adapter()
    feed(a, [(0.0, 40.0)] + [(0.3, 150.0)] * 10)
    low = a.decision.settings.bitrate_bps
    d = feed(a, [(0.0, 40.0)] * 4, start_s=11)
    assert d.settings.bitrate_bps == low  # waits 5 s before climbing
    d = feed(a, [(0.0, 40.0)] * 40, start_s=15)
    assert d.settings.bitrate_bps == 32000


def test_without_fec_redundancy_grows_with_loss():
    a = opus_adapter(fec_available=False)
    assert feed(a, [(0.02, 40.0)] * 3).redundancy == 1
    assert feed(a, [(0.08, 40.0)] * 3, 3).redundancy == 2
    assert feed(a, [(0.30, 40.0)] * 3, 6).redundancy == 3
    assert not a.decision.settings.fec


def test_user_limits_win():
    a = opus_adapter(fec="off", redundancy=1)
    d = feed(a, [(0.2, 40.0)] * 5)
    assert not d.settings.fec and d.redundancy == 1
    fixed = opus_adapter(adaptive=False, fec="on")
    d = feed(fixed, [(0.3, 200.0)] * 10)
    assert d.settings.fec and d.settings.bitrate_bps == 32000 and d.settings.loss_pct == 0
