"""L16 PCM codec and the codec registry."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from rtai.codecs import CodecError, codec_names, get_codec
from rtai.codecs.pcm import L16_PAYLOAD_TYPE, L16Decoder, L16Encoder


def test_l16_is_big_endian_and_channel_interleaved_byte_exact():
    block = np.array([[0.5, -0.5], [1 / 32768, -1.0], [0.0, 32767 / 32768]], dtype=np.float32)
    payload = L16Encoder(48000, 2, 3).encode(block)
    # frame 0: L=16384 R=-16384; frame 1: L=1 R=-32768; frame 2: L=0 R=32767
    assert payload == bytes.fromhex("4000 c000 0001 8000 0000 7fff")


def test_l16_decode_of_known_bytes_gives_frames_by_channels_float32():
    out = L16Decoder(48000, 2, 2).decode(bytes.fromhex("4000 c000 0001 8000"))
    assert out.dtype == np.float32
    assert out.shape == (2, 2)
    np.testing.assert_array_equal(out, [[0.5, -0.5], [1 / 32768, -1.0]])


@given(st.integers(1, 2), st.integers(1, 64), st.data())
def test_l16_round_trip_is_exact_on_the_16_bit_grid(channels, frames, data):
    ints = data.draw(
        st.lists(st.integers(-32768, 32767), min_size=frames * channels, max_size=frames * channels)
    )
    block = (np.array(ints, dtype=np.float32) / 32768).reshape(frames, channels)
    payload = L16Encoder(48000, channels, frames).encode(block)
    assert len(payload) == 2 * frames * channels
    np.testing.assert_array_equal(L16Decoder(48000, channels, frames).decode(payload), block)


@given(st.lists(st.floats(-1.0, 1.0, width=32), min_size=8, max_size=8))
def test_l16_round_trip_error_is_at_most_half_a_step(values):
    block = np.array(values, dtype=np.float32).reshape(8, 1)
    got = L16Decoder(48000, 1, 8).decode(L16Encoder(48000, 1, 8).encode(block))
    # +1.0 clips to 32767/32768; everything else rounds to the nearest step.
    assert np.all(np.abs(got - np.minimum(block, 32767 / 32768)) <= 0.5 / 32768 + 1e-9)


def test_out_of_range_floats_clip_to_the_16_bit_limits():
    block = np.array([[1.0], [1.5], [-1.0], [-3.0], [1e9], [-1e9]], dtype=np.float32)
    payload = L16Encoder(48000, 1, 6).encode(block)
    ints = np.frombuffer(payload, dtype=">i2").tolist()
    assert ints == [32767, 32767, -32768, -32768, 32767, -32768]


def test_encoder_reuse_does_not_leak_between_blocks():
    enc = L16Encoder(48000, 1, 2)
    first = enc.encode(np.array([[0.25], [0.5]], dtype=np.float32))
    second = enc.encode(np.array([[-0.25], [0.0]], dtype=np.float32))
    assert first == bytes.fromhex("2000 4000")
    assert second == bytes.fromhex("e000 0000")


@pytest.mark.parametrize("shape", [(4, 1), (3, 2), (4, 3), (8,)])
def test_encoder_rejects_a_block_of_the_wrong_shape(shape):
    with pytest.raises(CodecError, match="shape"):
        L16Encoder(48000, 2, 4).encode(np.zeros(shape, dtype=np.float32))


@pytest.mark.parametrize("length", [0, 1, 15, 17, 32])
def test_decode_of_wrong_length_payload_raises_codec_error(length):
    with pytest.raises(CodecError, match=f"{length} bytes, expected 16"):
        L16Decoder(48000, 2, 4).decode(bytes(length))


def test_registry_has_pcm_with_its_payload_type_and_factories():
    info = get_codec("pcm")
    assert info.name == "pcm"
    assert info.payload_type == L16_PAYLOAD_TYPE == 96
    enc = info.make_encoder(48000, 1, 4)
    dec = info.make_decoder(48000, 1, 4)
    block = np.array([[0.5], [0.25], [-0.5], [0.0]], dtype=np.float32)
    np.testing.assert_array_equal(dec.decode(enc.encode(block)), block)
    assert "pcm" in codec_names()
    assert codec_names() == sorted(codec_names())


def test_unknown_codec_raises_codec_error_listing_the_available_names():
    with pytest.raises(CodecError) as err:
        get_codec("mp3")
    message = str(err.value)
    assert "'mp3'" in message
    for name in codec_names():
        assert name in message


def test_codec_error_is_a_value_error():
    assert issubclass(CodecError, ValueError)
