"""Opus over libopus: round trips, settings, FEC recovery, concealment, bad payloads."""

import ctypes
import ctypes.util
from functools import cache

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rtai.audio.signals import speech
from rtai.codecs import CodecError, EncoderSettings, codec_names, get_codec
from rtai.codecs import libopus as lo
from rtai.codecs.opus import (
    OPUS_PAYLOAD_TYPE,
    OpusDecoder,
    OpusEncoder,
    block_choices,
    carries_lbrr,
    check,
    lbrr_flag,
)

SPEECH_S = 1.5


@cache
def _speech(rate_hz: int, channels: int, seconds: float = SPEECH_S) -> np.ndarray:
    x = speech(rate_hz, seconds, 0)
    if channels == 2:
        return np.stack([x, speech(rate_hz, seconds, 1)], axis=1)
    return x[:, None]


def _encode_all(signal: np.ndarray, enc: OpusEncoder) -> list[bytes]:
    b = enc.block_frames
    return [enc.encode(signal[i * b : (i + 1) * b]) for i in range(len(signal) // b)]


def _block_rms(block: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(block))))


def _snr_db(got: np.ndarray, ref: np.ndarray) -> float:
    return float(10 * np.log10(np.sum(ref**2) / max(np.sum((got - ref) ** 2), 1e-20)))


# --- the binding ----------------------------------------------------------------------


def test_binding_loads_the_system_libopus_and_reads_its_version_and_errors():
    lib = lo.load()
    assert lib.version().startswith("libopus 1.")
    assert lib.strerror(lo.OPUS_INVALID_PACKET) == "corrupted stream"
    with pytest.raises(CodecError, match="probe: corrupted stream"):
        lib.check(lo.OPUS_INVALID_PACKET, "probe")


def test_missing_libopus_is_a_one_line_os_error_naming_the_debian_package(monkeypatch):
    monkeypatch.setattr(lo, "_loaded", None)
    monkeypatch.setattr(ctypes.util, "find_library", lambda name: None)

    def no_library(name, *args, **kwargs):
        raise OSError(f"{name}: cannot open shared object file")

    monkeypatch.setattr(ctypes, "CDLL", no_library)
    with pytest.raises(lo.LibopusMissing) as err:
        lo.load()
    assert isinstance(err.value, OSError)
    assert str(err.value) == "libopus is not installed (Debian package libopus0)"


def test_missing_libopus_surfaces_as_codec_error_when_a_codec_is_made(monkeypatch):
    def missing():
        raise lo.LibopusMissing(lo.INSTALL_HINT)

    monkeypatch.setattr(lo, "load", missing)
    assert "opus" in codec_names()  # the registry stays whole
    with pytest.raises(CodecError, match="libopus0"):
        get_codec("opus").make_encoder(48000, 1, 480, EncoderSettings())
    with pytest.raises(CodecError, match="libopus0"):
        get_codec("opus").make_decoder(48000, 1, 480)


def test_encoder_ctl_int_and_pointer_forms_round_trip_through_the_variadic_call():
    lib = lo.load()
    state = lib.encoder_create(48000, 1, lo.OPUS_APPLICATION_AUDIO)
    try:
        for value in (6000, 32000, 256000):
            lib.encoder_set(state, lo.OPUS_SET_BITRATE, value)
            assert lib.encoder_get(state, lo.OPUS_GET_BITRATE) == value
        assert lib.encoder_get(state, lo.OPUS_GET_APPLICATION) == lo.OPUS_APPLICATION_AUDIO
        assert lib.encoder_get(state, lo.OPUS_GET_SAMPLE_RATE) == 48000
        with pytest.raises(CodecError, match="invalid argument"):
            lib.encoder_set(state, lo.OPUS_SET_COMPLEXITY, 11)
    finally:
        lib.encoder_destroy(state)


# --- registry and check() -------------------------------------------------------------


def test_registry_entry_for_opus_follows_rfc_7587():
    info = get_codec("opus")
    assert info.payload_type == OPUS_PAYLOAD_TYPE == 111
    assert info.has_fec
    for rate in (8000, 16000, 48000):
        assert info.clock_rate(rate) == 48000
    assert info.timestamp_step(16000, 320) == 960  # 20 ms at the 48 kHz RTP clock
    assert info.timestamp_step(48000, 120) == 120
    assert info.check is check


@pytest.mark.parametrize(
    "rate, blocks",
    [
        (48000, [120, 240, 480, 960]),
        (24000, [60, 120, 240, 480]),
        (16000, [40, 80, 160, 320]),
        (12000, [30, 60, 120, 240]),
        (8000, [20, 40, 80, 160]),
    ],
)
def test_check_accepts_exactly_the_opus_frame_sizes(rate, blocks):
    assert block_choices(rate) == blocks
    for block in blocks:
        for channels in (1, 2):
            assert check(rate, channels, block) is None
    for block in (1, 64, 128, blocks[0] + 1, 2 * blocks[-1], 3 * blocks[-1]):
        reason = check(rate, 1, block)
        assert reason is not None and "\n" not in reason
        assert "--frame" in reason and f"--rate {rate}" in reason
        assert ", ".join(map(str, blocks[:-1])) in reason and str(block) in reason


def test_check_names_the_rate_and_channel_options():
    reason = check(44100, 1, 441)
    assert reason and "--rate" in reason and "44100" in reason and "48000" in reason
    reason = check(48000, 3, 480)
    assert reason and "--channels" in reason and "3" in reason


@pytest.mark.parametrize(
    "make", [lambda: OpusEncoder(48000, 1, 128), lambda: OpusDecoder(44100, 1, 441)]
)
def test_constructors_refuse_what_check_refuses(make):
    with pytest.raises(CodecError, match="--"):
        make()


# --- round trips ----------------------------------------------------------------------


def _round_trip_correlation(rate, channels, block, bitrate):
    x = _speech(rate, channels)
    enc = OpusEncoder(rate, channels, block, EncoderSettings(bitrate_bps=bitrate))
    dec = OpusDecoder(rate, channels, block)
    y = np.concatenate([dec.decode(p).copy() for p in _encode_all(x, enc)])
    x = x[: len(y)]
    delay = enc.lookahead_frames

    def corr(lag):
        return min(np.corrcoef(x[: len(x) - lag, c], y[lag:, c])[0, 1] for c in range(channels))

    # The SILK and hybrid paths run a few frames earlier than the reported lookahead
    # (e.g. 309 against 312 at 48 kHz), so look around it.
    lags = range(max(0, delay - 8), delay + 9)
    best = max(lags, key=corr)
    return corr(best), best, delay


@pytest.mark.parametrize("channels", [1, 2])
@pytest.mark.parametrize("rate", [48000, 16000])
@pytest.mark.parametrize("block_ms", [2.5, 5, 10, 20])
def test_speech_survives_a_round_trip_at_every_block_size(rate, channels, block_ms):
    block = int(rate * block_ms) // 1000
    corr, lag, delay = _round_trip_correlation(rate, channels, block, 64000 * channels)
    assert corr > 0.9, f"correlation {corr:.3f} at lag {lag}"
    assert abs(lag - delay) <= rate // 8000, (lag, delay)


def test_lookahead_is_the_codec_delay_in_frames_at_the_sample_rate():
    assert OpusEncoder(48000, 1, 480).lookahead_frames == 312  # 2.5 ms + 4 ms at 48 kHz
    assert OpusEncoder(16000, 1, 160).lookahead_frames == 104
    low = OpusEncoder(48000, 1, 480, EncoderSettings(application="lowdelay"))
    assert low.lookahead_frames == 120  # 2.5 ms: no SILK, no delay compensation


def test_decoded_block_is_float32_frames_by_channels():
    enc = OpusEncoder(48000, 2, 480)
    dec = OpusDecoder(48000, 2, 480)
    out = dec.decode(enc.encode(np.zeros((480, 2), np.float32)))
    assert out.dtype == np.float32 and out.shape == (480, 2)


def test_decoder_of_either_channel_count_takes_mono_and_stereo_packets():
    mono = OpusEncoder(48000, 1, 480).encode(_speech(48000, 1)[:480])
    stereo = OpusEncoder(48000, 2, 480).encode(_speech(48000, 2)[:480])
    for channels in (1, 2):
        dec = OpusDecoder(48000, channels, 480)
        assert dec.decode(mono).shape == (480, channels)
        assert dec.decode(stereo).shape == (480, channels)


@pytest.mark.parametrize("shape", [(479, 1), (480, 2), (480,)])
def test_encoder_rejects_a_block_of_the_wrong_shape(shape):
    with pytest.raises(CodecError, match="shape"):
        OpusEncoder(48000, 1, 480).encode(np.zeros(shape, np.float32))


def test_encoder_takes_float64_blocks_and_does_not_keep_the_callers_array():
    enc = OpusEncoder(48000, 1, 480)
    block = _speech(48000, 1)[:480].astype(np.float64)
    payload = enc.encode(block)
    assert isinstance(payload, bytes) and 0 < len(payload) <= lo.MAX_PACKET_BYTES


# --- settings -------------------------------------------------------------------------


def test_bitrate_setting_changes_the_payload_sizes():
    x = _speech(48000, 1)
    means = {}
    for bitrate in (16000, 64000):
        enc = OpusEncoder(48000, 1, 480, EncoderSettings(bitrate_bps=bitrate))
        means[bitrate] = np.mean([len(p) for p in _encode_all(x, enc)])
    assert means[16000] < 0.5 * means[64000]
    # VBR averages near the target: 10 ms at 64 kbit/s is 80 bytes.
    assert 50 < means[64000] < 110


def test_cbr_gives_packets_of_one_size():
    enc = OpusEncoder(48000, 1, 480, EncoderSettings(bitrate_bps=32000, vbr=False))
    sizes = {len(p) for p in _encode_all(_speech(48000, 1), enc)}
    assert sizes == {40}


def test_settings_read_back_from_libopus_after_construction_and_configure():
    s = EncoderSettings(bitrate_bps=24000, fec=True, loss_pct=15, dtx=True, complexity=5)
    enc = OpusEncoder(16000, 1, 320, s)
    assert (enc.bitrate_bps, enc.fec, enc.loss_pct, enc.dtx, enc.complexity, enc.vbr) == (
        24000,
        True,
        15,
        True,
        5,
        True,
    )
    assert enc.application == "voip"
    enc.configure(EncoderSettings(bitrate_bps=48000, fec=False, loss_pct=0, vbr=False))
    assert (enc.bitrate_bps, enc.fec, enc.loss_pct, enc.dtx, enc.complexity, enc.vbr) == (
        48000,
        False,
        0,
        False,
        9,
        False,
    )
    assert enc.settings == EncoderSettings(bitrate_bps=48000, vbr=False)


def _record_ctls(enc, monkeypatch):
    calls = []
    real = enc._set

    def recording(request, value):
        calls.append((request, value))
        real(request, value)

    monkeypatch.setattr(enc, "_set", recording)
    return calls


def test_configure_calls_only_the_ctls_whose_values_changed(monkeypatch):
    base = EncoderSettings(bitrate_bps=32000, fec=True, loss_pct=10)
    enc = OpusEncoder(48000, 1, 480, base)
    calls = _record_ctls(enc, monkeypatch)

    enc.configure(EncoderSettings(bitrate_bps=32000, fec=True, loss_pct=10))
    assert calls == []

    enc.configure(EncoderSettings(bitrate_bps=24000, fec=True, loss_pct=10))
    assert calls == [(lo.OPUS_SET_BITRATE, 24000)]

    calls.clear()
    enc.configure(EncoderSettings(bitrate_bps=24000, fec=True, loss_pct=25))
    assert calls == [(lo.OPUS_SET_PACKET_LOSS_PERC, 25)]
    assert (enc.bitrate_bps, enc.fec, enc.loss_pct) == (24000, True, 25)


def test_changing_the_application_makes_a_new_encoder_with_every_setting(monkeypatch):
    settings_ = EncoderSettings(bitrate_bps=40000, fec=True, loss_pct=10, complexity=3)
    enc = OpusEncoder(48000, 1, 480, settings_)
    enc.encode(_speech(48000, 1)[:480])  # libopus now refuses OPUS_SET_APPLICATION
    calls = _record_ctls(enc, monkeypatch)
    lowdelay = EncoderSettings(**{**vars(settings_), "application": "lowdelay"})
    enc.configure(lowdelay)
    assert enc.application == "lowdelay"
    assert {request for request, _ in calls} == {
        lo.OPUS_SET_BITRATE,
        lo.OPUS_SET_COMPLEXITY,
        lo.OPUS_SET_VBR,
        lo.OPUS_SET_DTX,
        lo.OPUS_SET_INBAND_FEC,
        lo.OPUS_SET_PACKET_LOSS_PERC,
        lo.OPUS_SET_MAX_BANDWIDTH,
    }
    assert (enc.bitrate_bps, enc.complexity, enc.fec, enc.loss_pct) == (40000, 3, True, 10)
    assert enc.lookahead_frames == 120
    assert len(enc.encode(_speech(48000, 1)[:480])) > 0


@pytest.mark.parametrize(
    "bad, match",
    [
        ({"application": "music"}, "application"),
        ({"bitrate_bps": 100}, "bit rate"),
        ({"bitrate_bps": 600000}, "bit rate"),
        ({"complexity": 11}, "complexity"),
        ({"loss_pct": 101}, "loss"),
        ({"loss_pct": -1}, "loss"),
    ],
)
def test_impossible_settings_raise_codec_error_and_change_nothing(bad, match):
    enc = OpusEncoder(48000, 1, 480, EncoderSettings(bitrate_bps=32000))
    with pytest.raises(CodecError, match=match):
        enc.configure(EncoderSettings(**bad))
    assert enc.bitrate_bps == 32000 and enc.application == "voip"
    with pytest.raises(CodecError, match=match):
        OpusEncoder(48000, 1, 480, EncoderSettings(**bad))


def test_dtx_sends_one_byte_packets_in_silence():
    enc = OpusEncoder(48000, 1, 480, EncoderSettings(dtx=True))
    silence = np.zeros((480, 1), np.float32)
    sizes = [len(enc.encode(silence)) for _ in range(40)]
    assert sizes[-1] <= 2 and sizes.count(1) > 20
    # ... which the decoder takes as a block of (comfort) silence.
    assert OpusDecoder(48000, 1, 480).decode(enc.encode(silence)).shape == (480, 1)


def test_closed_codecs_raise_instead_of_touching_freed_memory():
    enc = OpusEncoder(48000, 1, 480)
    payload = enc.encode(np.zeros((480, 1), np.float32))
    enc.close()
    enc.close()
    with pytest.raises(CodecError, match="close"):
        enc.encode(np.zeros((480, 1), np.float32))
    dec = OpusDecoder(48000, 1, 480)
    dec.close()
    with pytest.raises(CodecError, match="close"):
        dec.decode(payload)
    assert dec.recover(payload) is None
    assert not dec.conceal().any()


# --- concealment and FEC --------------------------------------------------------------


def _decode_with_losses(packets, lost, rate, block, use_fec):
    """Decoder output per block, with the ``lost`` blocks recovered or concealed."""
    dec = OpusDecoder(rate, 1, block)
    out, recovered = [], 0
    for k, packet in enumerate(packets):
        if k in lost:
            got = dec.recover(packets[k + 1]) if use_fec else None
            if got is None:
                got = dec.conceal()
            else:
                recovered += 1
        else:
            got = dec.decode(packet)
        out.append(got.copy())
    return out, recovered


@pytest.mark.parametrize("rate, bitrate", [(48000, 32000), (48000, 24000), (16000, 24000)])
def test_fec_rebuilds_a_lost_block_far_better_than_concealment(rate, bitrate):
    block = rate // 100  # 10 ms
    x = _speech(rate, 1, 3.0)
    enc = OpusEncoder(rate, 1, block, EncoderSettings(bitrate_bps=bitrate, fec=True, loss_pct=20))
    packets = _encode_all(x, enc)
    reference, _ = _decode_with_losses(packets, set(), rate, block, False)
    # Lose every tenth packet where there is speech (silence is trivially concealed).
    lost = {k for k in range(5, len(packets) - 1, 10) if _block_rms(reference[k]) > 0.02}
    assert len(lost) >= 15

    with_fec, recovered = _decode_with_losses(packets, lost, rate, block, True)
    concealed, _ = _decode_with_losses(packets, lost, rate, block, False)

    ref = np.concatenate([reference[k] for k in sorted(lost)])
    fec_snr = _snr_db(np.concatenate([with_fec[k] for k in sorted(lost)]), ref)
    plc_snr = _snr_db(np.concatenate([concealed[k] for k in sorted(lost)]), ref)
    assert recovered >= 0.8 * len(lost)
    assert fec_snr > 4.0, f"FEC {fec_snr:.1f} dB"
    assert fec_snr > plc_snr + 3.0, f"FEC {fec_snr:.1f} dB, PLC {plc_snr:.1f} dB"


def test_the_packet_after_a_recovered_block_still_decodes_normally():
    enc = OpusEncoder(48000, 1, 480, EncoderSettings(fec=True, loss_pct=20))
    packets = _encode_all(_speech(48000, 1), enc)
    k = next(i for i in range(20, len(packets) - 1) if carries_lbrr(packets[i + 1]))
    reference, _ = _decode_with_losses(packets, set(), 48000, 480, False)
    dec = OpusDecoder(48000, 1, 480)
    for packet in packets[:k]:
        dec.decode(packet)
    assert dec.recover(packets[k + 1]) is not None
    after = dec.decode(packets[k + 1]).copy()
    assert _snr_db(after, reference[k + 1]) > 6.0


def test_recover_returns_none_when_the_encoder_had_fec_off():
    enc = OpusEncoder(48000, 1, 480, EncoderSettings(fec=False, loss_pct=20))
    packets = _encode_all(_speech(48000, 1), enc)
    dec = OpusDecoder(48000, 1, 480)
    for packet in packets:
        assert dec.recover(packet) is None
        dec.decode(packet)


def test_fec_needs_a_loss_hint_above_zero():
    enc = OpusEncoder(48000, 1, 480, EncoderSettings(fec=True, loss_pct=0))
    assert not any(carries_lbrr(p) for p in _encode_all(_speech(48000, 1), enc))


@pytest.mark.parametrize(
    "application, block",
    [("lowdelay", 480), ("voip", 240), ("voip", 120)],  # CELT-only: no SILK, no LBRR
)
def test_recover_returns_none_for_celt_only_packets(application, block):
    settings_ = EncoderSettings(fec=True, loss_pct=20, application=application)
    enc = OpusEncoder(48000, 1, block, settings_)
    packets = _encode_all(_speech(48000, 1), enc)
    assert all(p[0] >> 3 >= 16 for p in packets)
    dec = OpusDecoder(48000, 1, block)
    assert all(dec.recover(p) is None for p in packets)


def test_recover_returns_none_after_a_celt_only_packet_where_libopus_would_conceal():
    x = _speech(48000, 1)
    celt = _encode_all(x, OpusEncoder(48000, 1, 480, EncoderSettings(application="lowdelay")))
    silk = _encode_all(x, OpusEncoder(48000, 1, 480, EncoderSettings(fec=True, loss_pct=20)))
    k = next(i for i in range(20, len(silk) - 1) if carries_lbrr(silk[i + 1]))
    dec = OpusDecoder(48000, 1, 480)
    for packet in celt[:k]:
        dec.decode(packet)
    assert dec.recover(silk[k + 1]) is None
    dec.conceal()
    assert dec.recover(silk[k + 1]) is None  # PLC does not change the mode
    assert silk[k - 1][0] >> 3 < 16  # hybrid
    dec.decode(silk[k - 1])
    assert dec.recover(silk[k + 1]) is not None


def test_conceal_gives_a_bounded_block_of_the_right_shape_that_fades():
    enc = OpusEncoder(48000, 2, 480)
    packets = _encode_all(_speech(48000, 2), enc)
    dec = OpusDecoder(48000, 2, 480)
    assert not dec.conceal().any()  # nothing heard yet: silence
    for packet in packets[: len(packets) // 2]:
        dec.decode(packet)
    levels = []
    for _ in range(30):
        block = dec.conceal()
        assert block.shape == (480, 2) and block.dtype == np.float32
        assert np.all(np.isfinite(block)) and np.abs(block).max() <= 1.0
        levels.append(_block_rms(block))
    assert levels[-1] < 0.01
    assert dec.decode(packets[len(packets) // 2]).shape == (480, 2)


# --- LBRR flag parsing (RFC 6716 4.2.3) -----------------------------------------------


def _toc(config, stereo=False, code=0):
    return config << 3 | (4 if stereo else 0) | code


@pytest.mark.parametrize(
    "config, stereo, lbrr_bits",
    [
        (1, False, [6]),  # SILK NB 20 ms mono: VAD(7) LBRR(6)
        (9, False, [6]),  # SILK WB 20 ms
        (8, False, [6]),  # SILK WB 10 ms: still one SILK frame
        (2, False, [5]),  # SILK NB 40 ms: VAD VAD LBRR
        (11, False, [4]),  # SILK WB 60 ms: VAD VAD VAD LBRR
        (13, False, [6]),  # hybrid FB 20 ms
        (13, True, [6, 4]),  # stereo: mid VAD LBRR, side VAD LBRR
        (3, True, [4, 0]),  # stereo 60 ms: 3 VAD + LBRR per channel
    ],
)
def test_lbrr_flag_is_the_bit_after_the_vad_flags_of_each_channel(config, stereo, lbrr_bits):
    toc = _toc(config, stereo)
    for bit in range(8):
        assert lbrr_flag(toc, 1 << bit) == (bit in lbrr_bits), bit
    assert not lbrr_flag(toc, 0)


@pytest.mark.parametrize("config", range(16, 32))
def test_celt_only_packets_never_carry_lbrr(config):
    assert not lbrr_flag(_toc(config), 0xFF)
    assert not carries_lbrr(bytes([_toc(config), 0xFF, 0xFF]))


def test_carries_lbrr_reads_the_first_frame_of_every_framing_code():
    toc = _toc(9)  # SILK WB 20 ms mono: LBRR is bit 6 of the first frame byte
    yes, no = 0x40, 0x80
    assert carries_lbrr(bytes([toc, yes, 0, 0]))
    assert not carries_lbrr(bytes([toc, no, 0, 0]))
    assert carries_lbrr(bytes([toc | 1, yes, 0, no, 0]))  # code 1: two equal frames
    assert carries_lbrr(bytes([toc | 2, 2, yes, 0, no, 0, 0]))  # code 2: sizes 2 and 3
    assert not carries_lbrr(bytes([toc | 2, 2, no, 0, yes, 0, 0]))
    # code 3, one CBR frame, 2 bytes of padding: count byte 0x41, padding length 2.
    assert carries_lbrr(bytes([toc | 3, 0x41, 2, yes, 0, 0, 0]))
    assert not carries_lbrr(bytes([toc | 3, 0x41, 2, no, yes, 0, 0]))
    # a zero-length first frame (DTX) carries nothing, nor does an unparsable packet.
    assert not carries_lbrr(bytes([toc]))
    assert not carries_lbrr(bytes([toc | 2, 0, yes]))
    assert not carries_lbrr(bytes([toc | 1, yes, 0, 0]))  # code 1 with an odd length
    assert not carries_lbrr(b"")


def test_lbrr_flag_tracks_what_libopus_does_with_an_fec_request():
    """Where the flag is set, libopus's FEC decode differs from its PLC."""
    enc = OpusEncoder(16000, 2, 320, EncoderSettings(fec=True, loss_pct=20, bitrate_bps=40000))
    packets = _encode_all(_speech(16000, 2), enc)
    flagged = [k for k in range(1, len(packets) - 1) if carries_lbrr(packets[k + 1])]
    assert len(flagged) > len(packets) // 2
    for k in flagged[::6]:
        a, b = OpusDecoder(16000, 2, 320), OpusDecoder(16000, 2, 320)
        for packet in packets[:k]:
            a.decode(packet)
            b.decode(packet)
        fec = a.recover(packets[k + 1])
        assert fec is not None
        assert not np.array_equal(fec, b.conceal())


# --- bad payloads ---------------------------------------------------------------------


def _good_packet(block=480, rate=48000):
    enc = OpusEncoder(rate, 1, block)
    return _encode_all(_speech(rate, 1)[: 40 * block], enc)[-1]


def test_empty_payload_raises_codec_error():
    with pytest.raises(CodecError, match="empty"):
        OpusDecoder(48000, 1, 480).decode(b"")


@pytest.mark.parametrize("block, decoder_block", [(960, 480), (480, 960), (120, 480)])
def test_a_packet_of_the_wrong_duration_raises_codec_error(block, decoder_block):
    payload = _good_packet(block)
    with pytest.raises(CodecError, match=f"expected one block of {decoder_block}"):
        OpusDecoder(48000, 1, decoder_block).decode(payload)


def test_two_frame_packet_of_the_wrong_duration_raises_codec_error():
    frame = _good_packet(480)
    double = bytes([frame[0] | 1]) + frame[1:] + frame[1:]  # code 1: 2 x 10 ms
    assert OpusDecoder(48000, 1, 960).decode(double).shape == (960, 1)
    with pytest.raises(CodecError, match="960 frames"):
        OpusDecoder(48000, 1, 480).decode(double)


def test_malformed_framing_raises_codec_error_and_the_decoder_carries_on():
    good = _good_packet(480)
    toc = good[0] & 0xFC
    dec = OpusDecoder(48000, 1, 480)
    for bad in (
        bytes([toc | 1]) + good[1:] + good[1:-1],  # code 1: frames of unequal length
        bytes([toc | 2, 250]) + good[1:20],  # code 2: first frame longer than the packet
        bytes([toc | 3]),  # code 3 with no count byte
        bytes([toc | 3, 0]),  # code 3 with zero frames
        bytes([toc | 3, 0x41, 255, 255]) + good[1:],  # padding longer than the packet
    ):
        with pytest.raises(CodecError):
            dec.decode(bad)
    assert dec.decode(good).shape == (480, 1)


def test_truncated_packets_raise_codec_error_or_decode_to_a_finite_block():
    # Opus has no checksum: a cut single-frame packet is still a valid (worse) packet.
    good = _good_packet(480)
    dec = OpusDecoder(48000, 1, 480)
    for n in range(len(good)):
        try:
            out = dec.decode(good[:n])
        except CodecError:
            assert n == 0
        else:
            assert out.shape == (480, 1) and np.all(np.isfinite(out))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(payload=st.binary(max_size=1500), channels=st.sampled_from([1, 2]))
def test_arbitrary_bytes_decode_or_raise_codec_error_never_anything_else(payload, channels):
    dec = OpusDecoder(48000, channels, 480)
    try:
        out = dec.decode(payload)
    except CodecError:
        pass
    else:
        assert out.shape == (480, channels) and np.all(np.isfinite(out))
    got = dec.recover(payload)
    assert got is None or got.shape == (480, channels)
    assert dec.conceal().shape == (480, channels)


@settings(max_examples=300, deadline=None)
@given(
    config=st.integers(0, 31),
    stereo=st.booleans(),
    body=st.binary(min_size=0, max_size=400),
)
def test_garbage_behind_a_valid_single_frame_toc_is_decoded_or_refused_cleanly(
    config, stereo, body
):
    payload = bytes([_toc(config, stereo)]) + body
    twenty_ms = config in (1, 5, 9, 13, 15, 19, 23, 27, 31)
    dec = OpusDecoder(48000, 2, 960)
    try:
        out = dec.decode(payload)
    except CodecError as err:
        assert twenty_ms != ("expected one block" in str(err))
    else:
        assert twenty_ms
        assert out.shape == (960, 2) and np.all(np.isfinite(out))
    got = dec.recover(payload)
    assert got is None or (got.shape == (960, 2) and np.all(np.isfinite(got)))
