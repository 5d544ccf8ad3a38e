"""rtai lossless: bit-exact, self-contained packets, and corrupt payloads refused."""

import functools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rtai.codecs import CodecError, EncoderSettings, get_codec
from rtai.codecs import lossless_format as fmt
from rtai.codecs import lossless_search as search
from rtai.codecs.lossless import (
    LOSSLESS_PAYLOAD_TYPE,
    LosslessDecoder,
    LosslessEncoder,
    decode_ints,
    encode_ints,
)

BLOCKS = [64, 128, 256, 480, 960]
KINDS = [
    "random", "silent", "full_scale", "square", "clipped", "tone", "constant", "quiet", "cross",
    "tonal",
]  # fmt: skip


def make_signal(kind: str, frames: int, channels: int, depth: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    top, bottom = (1 << (depth - 1)) - 1, -(1 << (depth - 1))
    t = np.arange(frames)[:, None] + rng.integers(0, 1000)
    if kind == "random":
        x = rng.integers(bottom, top + 1, (frames, channels))
    elif kind == "silent":
        x = np.zeros((frames, channels))
    elif kind == "full_scale":
        x = np.where((t + np.arange(channels)) % 2, top, bottom) * np.ones((1, channels))
    elif kind == "square":
        x = np.where((t // rng.integers(2, 50)) % 2, top, bottom) * np.ones((1, channels))
    elif kind == "clipped":
        x = 3 * top * np.sin(2 * np.pi * t / rng.uniform(8, 200) + np.arange(channels))
    elif kind == "tone":
        x = 0.7 * top * np.sin(2 * np.pi * t / rng.uniform(4, 300) + np.arange(channels))
        x = x + rng.normal(0, 3, x.shape)
    elif kind == "constant":
        x = np.full((frames, channels), rng.integers(bottom, top + 1))
    elif kind == "cross":  # channel 2 (if any): a filtered copy of channel 1 plus noise
        x = cross_signal(frames, channels, depth, rng)
    elif kind == "tonal":  # harmonics falling off steeply, as a piano's: high orders pay
        f0 = rng.uniform(0.002, 0.01)  # cycles per sample
        x = np.zeros((frames, channels))
        for h in range(1, 13):
            x += np.sin(2 * np.pi * h * f0 * t + rng.uniform(0, 6.3, channels)) / h**2
        x = 0.4 * top * x / np.abs(x).max() + rng.normal(0, 2 << (depth - 16), x.shape)
    else:  # quiet: a few LSBs of noise
        x = rng.integers(-3, 4, (frames, channels))
    return np.clip(np.rint(x), bottom, top).astype(np.int64)


def cross_signal(frames: int, channels: int, depth: int, rng: np.random.Generator) -> np.ndarray:
    """A band-limited first channel and, for stereo, a second one that is a 3-tap filtered
    copy of it (taps at lags -1, 0, +1 with random gains) plus a little noise: what
    M/S cannot take out but cross-channel prediction can."""
    amp = 0.25 * (1 << (depth - 1))
    a = np.cumsum(rng.normal(0, 1, frames + 2))
    a = amp * (a - a.mean()) / (np.abs(a - a.mean()).max() + 1e-9)
    if channels == 1:
        return a[1:-1, None]
    g = rng.uniform(-0.6, 0.6, 3) + np.array([0.0, 0.8, 0.0])
    b = g[0] * a[:-2] + g[1] * a[1:-1] + g[2] * a[2:] + rng.normal(0, 2, frames)
    return np.stack([a[1:-1], b], axis=1)


@settings(max_examples=120, deadline=None)
@given(
    st.sampled_from(KINDS),
    st.sampled_from(BLOCKS),
    st.sampled_from([1, 2]),
    st.sampled_from([16, 24]),
    st.integers(0, 2**32 - 1),
)
def test_round_trip_is_bit_exact(kind, frames, channels, depth, seed):
    x = make_signal(kind, frames, channels, depth, seed)
    payload = encode_ints(x, depth)
    y, got_depth = decode_ints(payload, frames, channels)
    assert got_depth == depth
    np.testing.assert_array_equal(y, x)
    # Never worse than verbatim samples plus the one-byte header.
    assert len(payload) <= 1 + (frames * channels * depth + 7) // 8


@settings(max_examples=40, deadline=None)
@given(st.integers(16, 960), st.sampled_from([1, 2]), st.integers(0, 2**32 - 1))
def test_round_trip_at_any_block_length(frames, channels, seed):
    x = make_signal("tone", frames, channels, 16, seed)
    np.testing.assert_array_equal(decode_ints(encode_ints(x, 16), frames, channels)[0], x)


@pytest.mark.parametrize("channels", [1, 2])
@pytest.mark.parametrize("frames", BLOCKS)
def test_float_path_is_exact_on_the_16_and_24_bit_grids(frames, channels):
    rng = np.random.default_rng(frames + channels)
    settings_ = EncoderSettings()
    enc = LosslessEncoder(48000, channels, frames, settings_)
    dec = LosslessDecoder(48000, channels, frames)
    t = np.arange(frames)[:, None]
    for scale in (32768, 1 << 23):
        x = np.sin(2 * np.pi * t / 37 + np.arange(channels)) * 0.5 + rng.normal(0, 1e-3, t.shape)
        block = (np.rint(x * scale) / scale).astype(np.float32)
        out = dec.decode(enc.encode(block))
        assert out.dtype == np.float32 and out.shape == (frames, channels)
        np.testing.assert_array_equal(out, block)


def test_16_bit_audio_costs_16_bit_rates_on_the_24_bit_grid():
    rng = np.random.default_rng(5)
    x = rng.integers(-32768, 32768, (480, 1))
    enc = LosslessEncoder(48000, 1, 480)
    payload = enc.encode((x / 32768).astype(np.float32))
    assert len(payload) < 480 * 2 * 1.05  # wasted low bits are not coded


def test_correlated_audio_compresses_well_below_pcm():
    t = np.arange(480)[:, None]
    x = np.rint(8000 * np.sin(2 * np.pi * 440 * t / 48000) * np.array([[1.0, 0.9]]))
    x = x.astype(np.int64) + np.random.default_rng(2).integers(-2, 3, (480, 2))
    assert len(encode_ints(x, 16)) < 0.4 * x.size * 2


def test_each_packet_decodes_alone_in_any_order():
    rng = np.random.default_rng(9)
    frames, channels = 128, 2
    blocks = [make_signal("tone", frames, channels, 16, s) for s in rng.integers(0, 1000, 8)]
    payloads = [encode_ints(b, 16) for b in blocks]
    for k in [5, 0, 7, 3]:  # packets before k missing: a fresh decoder, nothing else
        np.testing.assert_array_equal(decode_ints(payloads[k], frames, channels)[0], blocks[k])
    dec = LosslessDecoder(48000, channels, frames)
    enc = LosslessEncoder(48000, channels, frames)
    floats = [(b / 32768).astype(np.float32) for b in blocks]
    packets = [enc.encode(f) for f in floats]
    np.testing.assert_array_equal(dec.decode(packets[6]), floats[6])


@settings(max_examples=300, deadline=None)
@given(st.sampled_from([64, 128, 480]), st.sampled_from([1, 2]), st.data())
def test_corrupt_payloads_raise_codec_error_and_nothing_else(frames, channels, data):
    x = make_signal(data.draw(st.sampled_from(KINDS)), frames, channels, 16, 3)
    good = bytearray(encode_ints(x, 16))
    how = data.draw(st.sampled_from(["flip", "truncate", "extend", "random"]))
    if how == "flip":
        for _ in range(data.draw(st.integers(1, 4))):
            i = data.draw(st.integers(0, len(good) - 1))
            good[i] ^= 1 << data.draw(st.integers(0, 7))
        bad = bytes(good)
    elif how == "truncate":
        bad = bytes(good[: data.draw(st.integers(0, len(good) - 1))])
    elif how == "extend":
        bad = bytes(good) + data.draw(st.binary(min_size=1, max_size=8))
    else:
        bad = data.draw(st.binary(max_size=400))
    try:
        y, _ = decode_ints(bad, frames, channels)
    except CodecError:
        return
    # A corruption the format cannot see still yields a block of the right shape/range.
    assert y.shape == (frames, channels)
    assert y.min() >= -(1 << 23) and y.max() < 1 << 23


def test_decoder_class_counts_on_codec_error_and_conceals():
    dec = LosslessDecoder(48000, 1, 64)
    enc = LosslessEncoder(48000, 1, 64)
    block = (np.sin(np.arange(64) / 5)[:, None] * 0.3).astype(np.float32)
    dec.decode(enc.encode(block))
    for bad in (b"", b"\x00", b"\xff" * 10, enc.encode(block)[:-3]):
        with pytest.raises(CodecError):
            dec.decode(bad)
    assert dec.conceal().shape == (64, 1)
    assert dec.recover(b"") is None


def test_wrong_channel_count_or_shape_is_refused():
    x = make_signal("tone", 128, 2, 16, 1)
    with pytest.raises(CodecError):
        decode_ints(encode_ints(x, 16), 128, 1)
    with pytest.raises(CodecError):
        LosslessEncoder(48000, 1, 128).encode(np.zeros((64, 1), np.float32))
    with pytest.raises(CodecError):
        encode_ints(np.full((4, 1), 1 << 20), 16)


def test_registry_entry():
    info = get_codec("lossless")
    assert info.payload_type == LOSSLESS_PAYLOAD_TYPE
    assert info.payload_type not in (96, 111, 121)
    assert info.check(48000, 2, 960) is None
    assert info.check(48000, 3, 128) is not None
    assert info.timestamp_step(48000, 480) == 480


def test_every_subframe_type_is_used_on_speech_and_decodes_exactly(monkeypatch):
    # Speech at 10 ms blocks takes every coding: constant (silence), polynomial,
    # polynomial + lifting packet, and (when the encoder tries it) the block's own
    # least-squares predict step.
    from rtai.audio.signals import speech

    monkeypatch.setattr(search, "FITTED", True)
    x = np.rint(speech(48000, 1.0, 0) * 32767).astype(np.int64)
    kinds = set()
    for i in range(x.size // 480):
        block = x[i * 480 : (i + 1) * 480, None]
        payload = encode_ints(block, 16)
        kinds.add(payload[1] >> 6)  # the subframe type, after the header byte
        np.testing.assert_array_equal(decode_ints(payload, 480, 1)[0], block)
    assert kinds == {0, 1, 2, 3}


def test_adaptive_coefficient_width_out_of_range_is_refused(monkeypatch):
    from rtai.audio.signals import speech
    from rtai.codecs import rice

    monkeypatch.setattr(search, "FITTED", True)
    x = np.rint(speech(48000, 1.0, 0) * 32767).astype(np.int64)
    for i in range(x.size // 480):
        payload = encode_ints(x[i * 480 : (i + 1) * 480, None], 16)
        if payload[1] >> 6 == 3:
            break
    else:
        pytest.fail("no block used the adaptive predict step")
    # header byte, then type:2, shift (flag:1, then 5 bits if set), order:3; warm-up
    # (width:5 + order values); depth - 1:2, a levels bit from depth 2, a taps bit; then
    # the first coefficient width:5.
    r = rice.BitReader(payload, start_byte=1)
    r.read(2)
    if r.read(1):
        r.read(5)
    order = r.read(3)
    if order:
        ww = r.read(5)
        r.read(ww * order)
    if r.read(2) > 0:  # the depth less one
        r.read(1)
    r.read(1)
    bits = np.unpackbits(np.frombuffer(payload, dtype=np.uint8))
    at = 8 + r.pos
    bits[at : at + 5] = 1  # width 31: over the limit
    with pytest.raises(CodecError):
        decode_ints(np.packbits(bits).tobytes(), 480, 1)


def _cross_bit(payload: bytes) -> int:
    return payload[0] & 1  # header bit 0: the second channel is cross-predicted


@settings(max_examples=80, deadline=None)
@given(st.integers(64, 960), st.sampled_from([16, 24]), st.integers(0, 2**32 - 1))
def test_cross_channel_prediction_round_trips_at_every_block_length(frames, depth, seed):
    x = make_signal("cross", frames, 2, depth, seed)
    payload = encode_ints(x, depth)
    np.testing.assert_array_equal(decode_ints(payload, frames, 2)[0], x)


@pytest.mark.parametrize("depth", [16, 24])
@pytest.mark.parametrize("frames", BLOCKS)
def test_cross_channel_prediction_is_chosen_when_it_pays(frames, depth, monkeypatch):
    x = make_signal("cross", frames, 2, depth, frames + depth)
    payload = encode_ints(x, depth)
    assert _cross_bit(payload) == 1
    np.testing.assert_array_equal(decode_ints(payload, frames, 2)[0], x)
    monkeypatch.setattr(search, "CROSS_PREDICTION", False)
    plain = encode_ints(x, depth)
    assert _cross_bit(plain) == 0
    assert len(payload) < len(plain)


@pytest.mark.parametrize("frames", [128, 480])
def test_cross_channel_prediction_on_the_float_path_keeps_wasted_bits(frames):
    # 16-bit audio on the 24-bit grid: the prediction works above the 8 zero low bits.
    x = make_signal("cross", frames, 2, 16, 11)
    block = (x / 32768).astype(np.float32)
    payload = LosslessEncoder(48000, 2, frames).encode(block)
    assert _cross_bit(payload) == 1
    assert len(payload) < len(encode_ints(x, 16)) + 8  # 16-bit rates, not 24
    np.testing.assert_array_equal(LosslessDecoder(48000, 2, frames).decode(payload), block)


def test_cross_bit_on_a_mono_or_verbatim_packet_is_refused():
    x = make_signal("tone", 128, 1, 16, 4)
    payload = bytearray(encode_ints(x, 16))
    payload[0] |= 1
    with pytest.raises(CodecError):
        decode_ints(bytes(payload), 128, 1)
    noise = make_signal("random", 128, 2, 16, 4)
    payload = bytearray(encode_ints(noise, 16))
    assert payload[0] >> 2 & 1  # verbatim
    payload[0] |= 1
    with pytest.raises(CodecError):
        decode_ints(bytes(payload), 128, 2)


def test_two_fitted_predict_steps_are_used_on_speech_and_decode_exactly(monkeypatch):
    # From 480 frames the second split down the low band may get its own fitted step
    # (the encoder tries fitted steps in mono blocks, when FITTED is set).
    from rtai.audio.signals import speech

    monkeypatch.setattr(search, "FITTED", True)
    x = np.rint(speech(48000, 1.0, 0) * 32767).astype(np.int64)
    levels = set()
    for frames in (480, 960):
        for i in range(x.size // frames):
            block = x[i * frames : (i + 1) * frames]
            planned = search._plan_coded(block, 16, mono=True)[1]
            if planned[0] != fmt.CONSTANT and planned[6] is not None:
                levels.add(len(planned[6]))
            payload = encode_ints(block[:, None], 16)
            np.testing.assert_array_equal(decode_ints(payload, frames, 1)[0], block[:, None])
    assert levels == {1, 2}


@settings(max_examples=200, deadline=None)
@given(st.sampled_from([64, 256, 480, 960]), st.sampled_from([16, 24]), st.data())
def test_corrupt_cross_predicted_payloads_never_crash(frames, depth, data):
    x = make_signal("cross", frames, 2, depth, data.draw(st.integers(0, 2**16)))
    y = _flipped_decode(data, encode_ints(x, depth), frames, 2, flips=6)
    if y is not None:
        assert y.min() >= -(1 << 23) and y.max() < 1 << 23


def _flipped_decode(data, payload: bytes, frames: int, channels: int, flips: int, first: int = 0):
    """Decode ``payload`` with 1..``flips`` bits flipped from byte ``first`` on: the block
    (of the right shape), or None when it is refused with CodecError (nothing else)."""
    good = bytearray(payload)
    for _ in range(data.draw(st.integers(1, flips))):
        i = data.draw(st.integers(first, len(good) - 1))
        good[i] ^= 1 << data.draw(st.integers(0, 7))
    try:
        y, _ = decode_ints(bytes(good), frames, channels)
    except CodecError:
        return None
    assert y.shape == (frames, channels)
    return y


@pytest.mark.parametrize("frames", [64, 128, 256, 480, 960])
def test_the_plan_counts_the_payload_bits_exactly(frames):
    # Half-step Rice plans count their parameters exactly, so the encoder's choices
    # compare true sizes: a mono payload is its header byte plus the planned bits.

    rng = np.random.default_rng(frames)
    for seed in range(6):
        x = make_signal(["tone", "cross", "quiet"][seed % 3], frames, 1, 16, seed)[:, 0]
        x = x + rng.integers(-40, 41, frames) * (seed % 2)
        x = np.clip(x, -32768, 32767)
        bits, _ = search._plan_coded(x, 16, mono=True)
        payload = encode_ints(x[:, None], 16)
        assert payload[0] >> 2 & 1 == 0  # not verbatim
        assert len(payload) == (8 + bits + 7) // 8


def test_lifting_and_half_steps_are_used_at_128_frames():
    from rtai.audio.signals import speech
    from rtai.codecs import rice

    x = np.rint(speech(48000, 1.0, 0) * 32767).astype(np.int64)
    kinds, half = set(), False
    for i in range(x.size // 128):
        block = x[i * 128 : (i + 1) * 128]
        planned = search._plan_coded(block, 16)[1]
        if planned[0] != fmt.CONSTANT:
            kinds.add(planned[3] > 0)  # a lifting depth
            params = planned[4].params
            half |= bool(np.any((params & 1) & (params != rice.HALF_ESCAPE)))
        np.testing.assert_array_equal(
            decode_ints(encode_ints(block[:, None], 16), 128, 1)[0], block[:, None]
        )
    assert kinds == {False, True} and half


@pytest.mark.parametrize("version", [1, 2, 3])
def test_payloads_of_other_versions_are_refused(version):
    # 1: whole-step Rice sequences; 2: the lifting depth sent as itself, 1..3; 3: no
    # fitted high-band step. Version 4 writes 0 in the header's 2-bit field.
    x = make_signal("tone", 128, 1, 16, 2)
    payload = bytearray(encode_ints(x, 16))
    assert payload[0] >> 6 == 0
    payload[0] = (payload[0] & 0x3F) | (version << 6)
    with pytest.raises(CodecError):
        decode_ints(bytes(payload), 128, 1)


@functools.lru_cache(maxsize=4)
def _speech_plans(frames: int) -> list[tuple[np.ndarray, tuple]]:
    """(block, plan) of each 16-bit mono block of a second of speech, fitted steps tried."""
    from rtai.audio.signals import speech

    x = np.rint(speech(48000, 1.0, 0) * 32767).astype(np.int64)
    blocks = [x[i * frames : (i + 1) * frames] for i in range(x.size // frames)]
    fitted, search.FITTED = search.FITTED, True
    try:
        return [(b, search._plan_coded(b, 16, mono=True)[1]) for b in blocks]
    finally:
        search.FITTED = fitted


@pytest.mark.parametrize("frames", [480, 960])
def test_depth_4_packets_and_fitted_steps_over_high_orders_decode_exactly(frames):
    # From 480 frames the lifting packet may be 4 deep (the field holds the depth less
    # one), with fixed steps or fitted ones; fitted steps are tried over polynomial
    # orders 0..3.

    seen = set()
    for block, planned in _speech_plans(frames):
        if planned[0] != fmt.CONSTANT:
            seen.add((planned[3], planned[6] is not None, planned[2] >= 2))
        payload = encode_ints(block[:, None], 16)
        np.testing.assert_array_equal(decode_ints(payload, frames, 1)[0], block[:, None])
    assert (4, True, True) in seen  # depth 4, fitted, over order 2 or 3
    assert any(depth < 4 and fitted for depth, fitted, _ in seen)


def test_depth_4_is_left_to_blocks_of_480_frames_and_more():

    assert search._depths(479) == (1, 2, 3) and search._depths(480) == (1, 2, 3, 4)
    assert all(p[0] == fmt.CONSTANT or p[3] <= 3 for _, p in _speech_plans(256))


def test_batched_fits_are_the_fits_of_each_residual():
    # The encoder fits the predict steps of every polynomial order (and both tap
    # counts) in one batch; each must be what fitting that residual alone gives.

    rng = np.random.default_rng(7)
    cols = np.cumsum(rng.normal(0, 100, (472, 4)), axis=0).astype(np.int64)
    cols[:, 3] = np.diff(np.cumsum(cols[:, 2]), prepend=0)  # a copy: same fit twice
    fits = search._fit_predictors(cols, (8, 12))
    for taps in (8, 12):
        for j in range(cols.shape[1]):
            alone = search._fit_predictor(cols[:, j], taps)
            coefs, bits = fits[taps][j]
            np.testing.assert_array_equal(coefs, alone)
            assert bits == search._coef_bits(alone)


@settings(max_examples=150, deadline=None)
@given(st.sampled_from([480, 960]), st.data())
def test_corrupt_depth_4_payloads_never_crash(frames, data):

    deep = [b for b, p in _speech_plans(frames) if p[0] != fmt.CONSTANT and p[3] == 4]
    block = deep[data.draw(st.integers(0, len(deep) - 1))]
    fitted, search.FITTED = search.FITTED, data.draw(st.booleans())  # type 3 or 2
    try:
        payload = encode_ints(block[:, None], 16)
    finally:
        search.FITTED = fitted
    y = _flipped_decode(data, payload, frames, 1, flips=4, first=1)
    if y is not None:
        assert y.min() >= -(1 << 15) and y.max() < 1 << 15


@pytest.mark.parametrize("channels", [1, 2])
def test_16_bit_floats_are_coded_as_16_bit_blocks(channels):
    # On the 24-bit grid a mid channel would keep a low bit that 16-bit audio does not
    # have, and every channel would pay a shift field: 16-bit blocks go out as such.
    x = make_signal("tone", 256, channels, 16, 5)
    block = (x / 32768).astype(np.float32)
    enc, dec = LosslessEncoder(48000, channels, 256), LosslessDecoder(48000, channels, 256)
    payload = enc.encode(block)
    assert payload == encode_ints(x, 16) and payload[0] >> 5 & 1 == 0
    np.testing.assert_array_equal(dec.decode(payload), block)
    y = make_signal("tone", 256, channels, 24, 5)
    y[0, 0] |= 1  # off the 16-bit grid
    block = (y / float(1 << 23)).astype(np.float32)
    payload = enc.encode(block)
    assert payload[0] >> 5 & 1 == 1
    np.testing.assert_array_equal(dec.decode(payload), block)


def test_the_handshake_offers_lossless_with_its_payload_version():
    from rtai.codecs.lossless import VERSION

    info = get_codec("lossless")
    assert info.version == VERSION >= 2
    assert info.wire_name == f"lossless/{VERSION}"
    assert get_codec(info.wire_name) is info  # the answer's name finds it again
    assert get_codec("pcm").wire_name == "pcm"  # version 1 codecs keep their plain name
    for other in ("lossless/1", f"lossless/{VERSION + 1}"):
        with pytest.raises(CodecError):
            get_codec(other)


@pytest.mark.parametrize("frames", [128, 480])
def test_long_lifting_steps_code_tonal_and_speech_blocks_smaller(frames, monkeypatch):
    # Version 4 lifts with the long interpolating steps of wavelet.LONG; the (9,7)-M
    # steps of version 3 (BANK None) leave more of each band in the other.
    from rtai.audio.signals import speech

    talk = np.rint(speech(48000, 0.5, 0) * 32767).astype(np.int64)
    blocks = [make_signal("tonal", frames, 1, 16, seed) for seed in range(4)]
    blocks += [talk[i : i + frames, None] for i in range(0, talk.size - frames, 4 * frames)]

    def total() -> int:
        size = 0
        for b in blocks:
            payload = encode_ints(b, 16)
            np.testing.assert_array_equal(decode_ints(payload, frames, 1)[0], b)
            size += len(payload)
        return size

    long_steps = total()
    monkeypatch.setattr(fmt, "BANK", None)
    assert long_steps < 0.995 * total()


def test_stereo_blocks_leave_the_fitted_steps_out(monkeypatch):
    # Over the long steps the fitted ones buy under 0.1 %: by default the encoder does
    # not try them, and when FITTED is set only in mono blocks.

    def refuse(*args, **kwargs):
        raise AssertionError("fitted steps tried in a stereo block")

    monkeypatch.setattr(search, "FITTED", True)
    monkeypatch.setattr(search, "_adaptive_guesses", refuse)
    for seed in range(3):
        x = make_signal("tonal", 480, 2, 16, seed)
        np.testing.assert_array_equal(decode_ints(encode_ints(x, 16), 480, 2)[0], x)
    with pytest.raises(AssertionError, match="fitted"):
        encode_ints(make_signal("tonal", 480, 1, 16, 0), 16)
    monkeypatch.setattr(search, "FITTED", False)
    encode_ints(make_signal("tonal", 480, 1, 16, 0), 16)  # not tried
