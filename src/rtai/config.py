"""Validated settings for one peer, shared by the CLI, the demo and the tests."""

from __future__ import annotations

from dataclasses import dataclass, field

from rtai.codecs import EncoderSettings
from rtai.processing import ProcessingOptions

RATES_HZ = (8000, 16000, 24000, 32000, 44100, 48000, 88200, 96000)
MIN_BLOCK_FRAMES = 64
MAX_BLOCK_FRAMES = 960
DEFAULT_PORT = 5004
DEFAULT_CODEC = "opus"


def default_block_frames(codec: str, rate_hz: int) -> int:
    """10 ms blocks for Opus (its sweet spot for voice); 128 frames for PCM."""
    return rate_hz // 100 if codec == "opus" else 128


class ConfigError(ValueError):
    """A setting out of range; the message names the option and what is allowed."""


@dataclass
class PeerConfig:
    rate_hz: int = 48000
    channels: int = 1
    block_frames: int = 128
    codecs: tuple[str, ...] = ("pcm",)
    buffer_ms: float = 20.0  # the fixed target, or where auto mode starts
    buffer_auto: bool = False  # adapt the target to measured jitter (the CLI default)
    buffer_safety: str = "normal"  # low | normal | high
    buffer_min_ms: float = 0.0
    buffer_max_ms: float = 500.0
    seconds: float | None = None
    cname: str = "rtai"
    encoder: EncoderSettings = field(default_factory=EncoderSettings)
    fec: str = "auto"  # on | off | auto (Opus in-band FEC)
    redundancy: int | None = None  # RFC 2198 blocks carried along; None = adapt
    adaptive: bool = True  # follow the path: loss hint, FEC, redundancy, bitrate
    processing: ProcessingOptions | None = None  # AEC, NS, AGC, voice DTX, push-to-talk
    extra: dict = field(default_factory=dict)

    def validate(self) -> None:
        if self.rate_hz not in RATES_HZ:
            raise ConfigError(
                f"--rate {self.rate_hz} is not supported; use one of "
                + ", ".join(str(r) for r in RATES_HZ)
            )
        if self.channels not in (1, 2):
            raise ConfigError(f"--channels {self.channels}: use 1 or 2")
        from rtai import codecs

        for name in self.codecs:
            reason = codecs.get_codec(name).check(self.rate_hz, self.channels, self.block_frames)
            if reason and name == self.codecs[0]:
                raise ConfigError(reason)
        if not MIN_BLOCK_FRAMES <= self.block_frames <= MAX_BLOCK_FRAMES:
            raise ConfigError(
                f"--frame {self.block_frames}: use {MIN_BLOCK_FRAMES} to {MAX_BLOCK_FRAMES} "
                "samples per packet"
            )
        if not 0 <= self.buffer_ms <= 2000:
            raise ConfigError(f"--buffer {self.buffer_ms}: use 0 to 2000 ms")
        if self.buffer_safety not in ("low", "normal", "high"):
            raise ConfigError(f"--buffer-safety {self.buffer_safety}: use low, normal or high")
        if not 0 <= self.buffer_min_ms <= self.buffer_max_ms <= 2000:
            raise ConfigError(
                f"--buffer-min {self.buffer_min_ms:g} / --buffer-max {self.buffer_max_ms:g}: "
                "use 0 <= min <= max <= 2000 ms"
            )
        if self.fec not in ("on", "off", "auto"):
            raise ConfigError(f"--fec {self.fec}: use on, off or auto")
        if self.redundancy is not None and not 0 <= self.redundancy <= 3:
            raise ConfigError(f"--redundancy {self.redundancy}: use 0 to 3")
        if not 6 <= self.encoder.bitrate_bps / 1000 <= 510:
            raise ConfigError(f"--bitrate {self.encoder.bitrate_bps / 1000:g}: use 6 to 510 kbit/s")
        if self.seconds is not None and not self.seconds > 0:
            raise ConfigError(f"--seconds {self.seconds}: use a positive number")

    @property
    def block_s(self) -> float:
        return self.block_frames / self.rate_hz


def parse_hostport(
    text: str | None,
    default_port: int | None = DEFAULT_PORT,
    option: str = "address",
    allow_port_zero: bool = False,
) -> tuple[str, int]:
    """Parse ``HOST``, ``HOST:PORT``, ``[V6]:PORT`` or a bare IPv6 address.

    With ``default_port=None`` the port is required. Raises :class:`ConfigError`
    with a one-line message that names ``option``.
    """
    if text is None or not str(text).strip():
        raise ConfigError(f"{option} is required, as HOST:PORT (e.g. 127.0.0.1:5004)")
    text = str(text).strip()
    port_text: str | None = None
    if text.startswith("["):
        end = text.find("]")
        if end < 0 or (text[end + 1 :] and text[end + 1 : end + 2] != ":"):
            raise ConfigError(f"{option} {text!r}: write IPv6 addresses as [ADDR]:PORT")
        host = text[1:end]
        port_text = text[end + 2 :] if text[end + 1 :] else None
    elif text.count(":") == 1:
        host, port_text = text.split(":")
    else:
        host = text  # a host name, an IPv4 address or a bare IPv6 address
    if not host:
        raise ConfigError(f"{option} {text!r}: missing host, e.g. 127.0.0.1:5004")
    if port_text is None:
        if default_port is None:
            raise ConfigError(f"{option} {text!r}: expected HOST:PORT, e.g. 127.0.0.1:5004")
        return host, default_port
    low = 0 if allow_port_zero else 1
    if not (port_text.isascii() and port_text.isdigit()) or not low <= int(port_text) <= 65535:
        raise ConfigError(f"{option} {text!r}: port must be an integer {low}..65535")
    return host, int(port_text)


def buffer_ms(text: str) -> float:
    """The value of ``--buffer``: ``auto`` (where the adaptive buffer starts) or ms."""
    if text == "auto":
        return PeerConfig.buffer_ms
    try:
        return float(text)
    except ValueError:
        raise ConfigError(f"--buffer {text}: use auto or a number of ms") from None
