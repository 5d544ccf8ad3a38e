"""A thin ctypes binding to the system libopus (the RFC 6716 reference library).

Only what :mod:`rtai.codecs.opus` needs: single-stream encoder and decoder, their
CTLs, and the packet inspection helpers. Facts (signatures, CTL request numbers,
constants) come from libopus 1.3.1's ``opus.h`` and ``opus_defines.h``.

The library is loaded on first use by :func:`load`, not at import, so importing
rtai never fails where libopus is missing; :func:`load` then raises
:class:`LibopusMissing` (an ``OSError``) with the package to install.

``opus_encoder_ctl`` and ``opus_decoder_ctl`` are variadic C functions
(``int ctl(st, int request, ...)``): a SET request passes an ``opus_int32``, a GET
request an ``opus_int32 *``, ``OPUS_RESET_STATE`` nothing. ctypes cannot declare a
variadic prototype, so each form gets its own function pointer object with fixed
argtypes (``cdll["name"]`` makes a fresh object each time; ``cdll.name`` would share
one). On x86-64 System V and on Linux AArch64, variadic integer and pointer
arguments travel in the same registers as fixed ones, and libffi sets ``%al`` (the
vector-register count a variadic callee reads) on every x86-64 call, so fixed
prototypes are correct there. They would not be on Apple arm64, where variadic
arguments go on the stack.

Thread safety: one encoder or decoder state must be used by one thread at a time
(libopus states are not shared internally); the module holds no mutable state after
:func:`load`.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import threading

from rtai.codecs import CodecError

INSTALL_HINT = "libopus is not installed (Debian package libopus0)"

# Error codes (opus_defines.h).
OPUS_OK = 0
OPUS_BAD_ARG = -1
OPUS_BUFFER_TOO_SMALL = -2
OPUS_INTERNAL_ERROR = -3
OPUS_INVALID_PACKET = -4
OPUS_UNIMPLEMENTED = -5
OPUS_INVALID_STATE = -6
OPUS_ALLOC_FAIL = -7

# Applications: fixed when the encoder is created (OPUS_SET_APPLICATION is refused
# once a frame has been encoded).
OPUS_APPLICATION_VOIP = 2048
OPUS_APPLICATION_AUDIO = 2049
OPUS_APPLICATION_RESTRICTED_LOWDELAY = 2051

OPUS_AUTO = -1000
OPUS_BITRATE_MAX = -1

OPUS_BANDWIDTH_NARROWBAND = 1101
OPUS_BANDWIDTH_MEDIUMBAND = 1102
OPUS_BANDWIDTH_WIDEBAND = 1103
OPUS_BANDWIDTH_SUPERWIDEBAND = 1104
OPUS_BANDWIDTH_FULLBAND = 1105

# CTL request numbers (opus_defines.h): SET takes an opus_int32, GET an opus_int32 *.
OPUS_SET_APPLICATION = 4000
OPUS_GET_APPLICATION = 4001
OPUS_SET_BITRATE = 4002
OPUS_GET_BITRATE = 4003
OPUS_SET_MAX_BANDWIDTH = 4004
OPUS_GET_MAX_BANDWIDTH = 4005
OPUS_SET_VBR = 4006
OPUS_GET_VBR = 4007
OPUS_GET_BANDWIDTH = 4009
OPUS_SET_COMPLEXITY = 4010
OPUS_GET_COMPLEXITY = 4011
OPUS_SET_INBAND_FEC = 4012
OPUS_GET_INBAND_FEC = 4013
OPUS_SET_PACKET_LOSS_PERC = 4014
OPUS_GET_PACKET_LOSS_PERC = 4015
OPUS_SET_DTX = 4016
OPUS_GET_DTX = 4017
OPUS_GET_LOOKAHEAD = 4027
OPUS_RESET_STATE = 4028  # takes no argument
OPUS_GET_SAMPLE_RATE = 4029
OPUS_GET_LAST_PACKET_DURATION = 4039

# The largest packet opus_encode needs room for (the docs recommend 4000 bytes).
MAX_PACKET_BYTES = 4000
# opus_packet_parse fills arrays of this many frames.
MAX_FRAMES_PER_PACKET = 48


class LibopusMissing(OSError):
    """libopus could not be loaded; the message says what to install."""


_c_int = ctypes.c_int
_c_int32 = ctypes.c_int32
_ptr = ctypes.c_void_p
_int32_ptr = ctypes.POINTER(ctypes.c_int32)


class Libopus:
    """The loaded library's functions, with fixed prototypes.

    Attributes are the raw ctypes functions (called directly on the hot path);
    methods add error checking for the setup calls.
    """

    def __init__(self, cdll: ctypes.CDLL) -> None:
        def fn(name: str, restype, *argtypes):
            f = cdll[name]  # a fresh function object: prototypes never shared
            f.restype = restype
            f.argtypes = argtypes
            return f

        self.get_version_string = fn("opus_get_version_string", ctypes.c_char_p)
        self.strerror_c = fn("opus_strerror", ctypes.c_char_p, _c_int)

        self.encoder_get_size = fn("opus_encoder_get_size", _c_int, _c_int)
        # OpusEncoder *opus_encoder_create(opus_int32 Fs, int channels, int application,
        #                                  int *error)
        self.encoder_create_c = fn(
            "opus_encoder_create", _ptr, _c_int32, _c_int, _c_int, ctypes.POINTER(_c_int)
        )
        self.encoder_destroy = fn("opus_encoder_destroy", None, _ptr)
        # opus_int32 opus_encode_float(OpusEncoder *st, const float *pcm, int frame_size,
        #                              unsigned char *data, opus_int32 max_data_bytes)
        self.encode_float = fn("opus_encode_float", _c_int32, _ptr, _ptr, _c_int, _ptr, _c_int32)
        self.encoder_ctl_set = fn("opus_encoder_ctl", _c_int, _ptr, _c_int, _c_int32)
        self.encoder_ctl_get = fn("opus_encoder_ctl", _c_int, _ptr, _c_int, _int32_ptr)
        self.encoder_ctl_none = fn("opus_encoder_ctl", _c_int, _ptr, _c_int)

        # OpusDecoder *opus_decoder_create(opus_int32 Fs, int channels, int *error)
        self.decoder_create_c = fn(
            "opus_decoder_create", _ptr, _c_int32, _c_int, ctypes.POINTER(_c_int)
        )
        self.decoder_destroy = fn("opus_decoder_destroy", None, _ptr)
        # int opus_decode_float(OpusDecoder *st, const unsigned char *data, opus_int32 len,
        #                       float *pcm, int frame_size, int decode_fec)
        # data may be NULL (None): packet loss, run the concealment (PLC).
        self.decode_float = fn(
            "opus_decode_float", _c_int, _ptr, ctypes.c_char_p, _c_int32, _ptr, _c_int, _c_int
        )
        self.decoder_ctl_set = fn("opus_decoder_ctl", _c_int, _ptr, _c_int, _c_int32)
        self.decoder_ctl_get = fn("opus_decoder_ctl", _c_int, _ptr, _c_int, _int32_ptr)
        self.decoder_ctl_none = fn("opus_decoder_ctl", _c_int, _ptr, _c_int)

        # Packet inspection: no state, safe from any thread.
        self.packet_get_bandwidth = fn("opus_packet_get_bandwidth", _c_int, ctypes.c_char_p)
        self.packet_get_nb_frames = fn(
            "opus_packet_get_nb_frames", _c_int, ctypes.c_char_p, _c_int32
        )
        self.packet_get_nb_samples = fn(
            "opus_packet_get_nb_samples", _c_int, ctypes.c_char_p, _c_int32, _c_int32
        )
        # int opus_packet_parse(const unsigned char *data, opus_int32 len,
        #     unsigned char *out_toc, const unsigned char *frames[48], opus_int16 size[48],
        #     int *payload_offset)
        self.packet_parse = fn(
            "opus_packet_parse",
            _c_int,
            ctypes.c_char_p,
            _c_int32,
            ctypes.POINTER(ctypes.c_ubyte),
            ctypes.POINTER(ctypes.c_void_p),
            ctypes.POINTER(ctypes.c_int16),
            ctypes.POINTER(_c_int),
        )

    # --- checked helpers (setup paths; the hot path calls the raw functions) -----------

    def version(self) -> str:
        """The library's version string, e.g. ``libopus 1.3.1``."""
        return self.get_version_string().decode("ascii", "replace")

    def strerror(self, code: int) -> str:
        text = self.strerror_c(code)
        return text.decode("ascii", "replace") if text else f"error {code}"

    def check(self, code: int, what: str) -> int:
        """Return ``code`` when it is not negative, else raise CodecError naming ``what``."""
        if code < 0:
            raise CodecError(f"{what}: {self.strerror(code)}")
        return code

    def encoder_create(self, rate_hz: int, channels: int, application: int) -> int:
        """A new encoder state (an address; free it with :meth:`encoder_destroy`)."""
        err = _c_int(0)
        state = self.encoder_create_c(rate_hz, channels, application, ctypes.byref(err))
        if err.value != OPUS_OK or not state:
            raise CodecError(f"cannot create an Opus encoder: {self.strerror(err.value)}")
        return state

    def decoder_create(self, rate_hz: int, channels: int) -> int:
        """A new decoder state (an address; free it with :meth:`decoder_destroy`)."""
        err = _c_int(0)
        state = self.decoder_create_c(rate_hz, channels, ctypes.byref(err))
        if err.value != OPUS_OK or not state:
            raise CodecError(f"cannot create an Opus decoder: {self.strerror(err.value)}")
        return state

    def encoder_set(self, state: int, request: int, value: int) -> None:
        self.check(self.encoder_ctl_set(state, request, value), f"Opus encoder CTL {request}")

    def encoder_get(self, state: int, request: int) -> int:
        value = _c_int32(0)
        self.check(
            self.encoder_ctl_get(state, request, ctypes.byref(value)),
            f"Opus encoder CTL {request}",
        )
        return value.value

    def decoder_get(self, state: int, request: int) -> int:
        value = _c_int32(0)
        self.check(
            self.decoder_ctl_get(state, request, ctypes.byref(value)),
            f"Opus decoder CTL {request}",
        )
        return value.value

    def decoder_reset(self, state: int) -> None:
        self.check(self.decoder_ctl_none(state, OPUS_RESET_STATE), "Opus decoder reset")

    def nb_samples(self, packet: bytes, rate_hz: int) -> int:
        """Frames per channel ``packet`` decodes to at ``rate_hz``, or a negative error."""
        if not packet:
            return OPUS_BAD_ARG
        return self.packet_get_nb_samples(packet, len(packet), rate_hz)

    def nb_frames(self, packet: bytes) -> int:
        """Opus frames in ``packet``, or a negative error."""
        if not packet:
            return OPUS_BAD_ARG
        return self.packet_get_nb_frames(packet, len(packet))

    def bandwidth(self, packet: bytes) -> int:
        """The packet's audio bandwidth (OPUS_BANDWIDTH_*), or a negative error."""
        if not packet:
            return OPUS_BAD_ARG
        return self.packet_get_bandwidth(packet)


_loaded: Libopus | None = None
_load_lock = threading.Lock()


def _find() -> ctypes.CDLL:
    for name in (ctypes.util.find_library("opus"), "libopus.so.0"):
        if name:
            try:
                return ctypes.CDLL(name)
            except OSError:
                pass
    raise LibopusMissing(INSTALL_HINT)


def load() -> Libopus:
    """The library, loaded once; raises :class:`LibopusMissing` where it is absent."""
    global _loaded
    if _loaded is None:
        with _load_lock:
            if _loaded is None:
                cdll = _find()
                try:
                    _loaded = Libopus(cdll)
                except AttributeError as err:  # a symbol missing: a libopus far too old
                    raise LibopusMissing(
                        f"the installed libopus is too old ({err}); install libopus0 1.3 or later"
                    ) from None
    return _loaded
