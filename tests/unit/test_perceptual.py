"""rtai perceptual: shaped quantisation, self-contained packets, rate control."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rtai.codecs import CodecError, EncoderSettings, get_codec
from rtai.codecs.perceptual import (
    PERCEPTUAL_PAYLOAD_TYPE,
    PerceptualDecoder,
    PerceptualEncoder,
    RateController,
    band_steps,
    decode_block,
    encode_block,
    packet_depth,
)
from rtai.dsp import toh

RATE = 48000


def music_like(frames: int, channels: int, seed: int = 0, noise: float = 0.003) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(frames)[:, None] / RATE
    x = np.zeros((frames, channels))
    for f in rng.uniform(80, 6000, 8):
        x += rng.uniform(0.02, 0.1) * np.sin(2 * np.pi * f * t + rng.uniform(0, 6, channels))
    x += noise * rng.standard_normal(x.shape)
    return x.astype(np.float32)


def snr_db(ref: np.ndarray, out: np.ndarray) -> float:
    return 10 * np.log10(np.sum(ref.astype(np.float64) ** 2) / np.sum((ref - out) ** 2))


def test_terhardt_threshold_has_its_dip_near_3_khz_and_rises_at_the_ends():
    f = np.array([100.0, 1000.0, 3300.0, 10000.0, 18000.0])
    t = toh.threshold_db_spl(f)
    assert np.argmin(t) == 2 and t[2] < -4
    assert t[0] > 10 and t[4] > 20
    assert abs(toh.threshold_db_spl(1000.0) - 3.37) < 0.1


def test_steps_follow_the_threshold_and_scale_by_an_octave_per_8_indices():
    bounds, s0 = band_steps(480, packet_depth(480), RATE, 40)
    _, s1 = band_steps(480, packet_depth(480), RATE, 48)
    np.testing.assert_allclose(s1 / s0, 2.0)
    centre_hz = (np.arange(s0.size) + 0.5) * RATE / 2 / s0.size
    assert s0[np.argmin(np.abs(centre_hz - 3300))] < s0[-1] / 100  # finest near 3.3 kHz
    assert bounds[-1] == 480


@pytest.mark.parametrize("channels", [1, 2])
@pytest.mark.parametrize("frames", [64, 128, 256, 480, 960])
def test_quality_rises_with_finer_steps(frames, channels):
    # No white noise: its part above ~16 kHz lies under the threshold and is dropped.
    x = music_like(frames, channels, noise=0.0)
    coarse = decode_block(encode_block(x, RATE, 90), frames, channels, RATE)
    fine = decode_block(encode_block(x, RATE, 20), frames, channels, RATE)
    assert coarse.shape == fine.shape == (frames, channels)
    assert snr_db(x, fine) > snr_db(x, coarse) + 10
    # (The top bands, above ~15 kHz, get steps near full scale: what the filters leak
    # there is dropped, which bounds the SNR of this test signal near 30 dB.)
    assert snr_db(x, fine) > 22
    assert len(encode_block(x, RATE, 20)) > len(encode_block(x, RATE, 90))


def test_silence_costs_a_few_bytes():
    payload = encode_block(np.zeros((480, 2), np.float32), RATE, 60)
    assert len(payload) <= 2 + 8
    np.testing.assert_array_equal(decode_block(payload, 480, 2, RATE), 0)


def test_each_packet_decodes_alone():
    enc = PerceptualEncoder(RATE, 2, 256, EncoderSettings(bitrate_bps=96000))
    blocks = [music_like(256, 2, s) for s in range(6)]
    payloads = [enc.encode(b) for b in blocks]
    for k in (4, 1, 5):
        alone = PerceptualDecoder(RATE, 2, 256).decode(payloads[k]).copy()
        np.testing.assert_array_equal(alone, decode_block(payloads[k], 256, 2, RATE))
        assert snr_db(blocks[k], alone) > 10


@pytest.mark.parametrize("bitrate_bps", [24000, 64000, 160000])
def test_rate_control_settles_within_a_second(bitrate_bps):
    frames = 480
    enc = PerceptualEncoder(RATE, 2, frames, EncoderSettings(bitrate_bps=bitrate_bps))
    rng = np.random.default_rng(3)
    bits = []
    for k in range(300):  # 3 s, the signal changing every 50 ms
        bits.append(8 * len(enc.encode(music_like(frames, 2, seed=int(rng.integers(1e6)) + k))))
    per_s = np.array(bits).reshape(3, 100).sum(axis=1)
    # Past the first second every second is within 10 % of the target.
    assert np.all(np.abs(per_s[1:] / bitrate_bps - 1) < 0.10), per_s
    # And it moves to a new target within a second too.
    enc.configure(EncoderSettings(bitrate_bps=bitrate_bps * 2))
    more = [8 * len(enc.encode(music_like(frames, 2, seed=k))) for k in range(200)]
    assert abs(sum(more[100:]) / (2 * bitrate_bps) - 1) < 0.10


def test_controller_moves_the_scale_the_right_way():
    c = RateController(target_bits=1000, scale=50)
    c.update(4000)
    assert c.scale > 50
    c = RateController(target_bits=1000, scale=50)
    c.update(250)
    assert c.scale < 50


@settings(max_examples=300, deadline=None)
@given(st.sampled_from([128, 480]), st.sampled_from([1, 2]), st.data())
def test_corrupt_payloads_raise_codec_error_and_nothing_else(frames, channels, data):
    good = bytearray(encode_block(music_like(frames, channels, 1), RATE, 40))
    how = data.draw(st.sampled_from(["flip", "truncate", "random"]))
    if how == "flip":
        for _ in range(data.draw(st.integers(1, 4))):
            i = data.draw(st.integers(0, len(good) - 1))
            good[i] ^= 1 << data.draw(st.integers(0, 7))
        bad = bytes(good)
    elif how == "truncate":
        bad = bytes(good[: data.draw(st.integers(0, len(good) - 1))])
    else:
        bad = data.draw(st.binary(max_size=300))
    try:
        out = decode_block(bad, frames, channels, RATE)
    except CodecError:
        return
    assert out.shape == (frames, channels) and np.all(np.abs(out) <= 1.0)


def test_bad_settings_and_shapes_are_refused():
    with pytest.raises(CodecError):
        PerceptualEncoder(RATE, 1, 480, EncoderSettings(bitrate_bps=100))
    enc = PerceptualEncoder(RATE, 1, 480)
    with pytest.raises(CodecError):
        enc.encode(np.zeros((128, 1), np.float32))
    with pytest.raises(CodecError):
        decode_block(encode_block(np.zeros((480, 2), np.float32), RATE, 10), 480, 1, RATE)
    dec = PerceptualDecoder(RATE, 1, 480)
    with pytest.raises(CodecError):
        dec.decode(b"\x00")
    assert dec.conceal().shape == (480, 1) and dec.recover(b"") is None


def test_registry_entry():
    info = get_codec("perceptual")
    assert info.payload_type == PERCEPTUAL_PAYLOAD_TYPE
    assert info.payload_type not in (96, 100, 111, 121)
    assert info.check(48000, 2, 480) is None and info.check(48000, 2, 16) is not None
