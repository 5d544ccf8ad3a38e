"""Validated settings for one peer, shared by the CLI, the demo and the tests."""

from __future__ import annotations

from dataclasses import dataclass, field

RATES_HZ = (8000, 16000, 24000, 32000, 44100, 48000, 88200, 96000)
MIN_BLOCK_FRAMES = 64
MAX_BLOCK_FRAMES = 960
DEFAULT_PORT = 5004


class ConfigError(ValueError):
    """A setting out of range; the message names the option and what is allowed."""


@dataclass
class PeerConfig:
    rate_hz: int = 48000
    channels: int = 1
    block_frames: int = 128
    codecs: tuple[str, ...] = ("pcm",)
    buffer_ms: float = 20.0
    seconds: float | None = None
    cname: str = "rtai"
    extra: dict = field(default_factory=dict)

    def validate(self) -> None:
        if self.rate_hz not in RATES_HZ:
            raise ConfigError(
                f"--rate {self.rate_hz} is not supported; use one of "
                + ", ".join(str(r) for r in RATES_HZ)
            )
        if self.channels not in (1, 2):
            raise ConfigError(f"--channels {self.channels}: use 1 or 2")
        if not MIN_BLOCK_FRAMES <= self.block_frames <= MAX_BLOCK_FRAMES:
            raise ConfigError(
                f"--frame {self.block_frames}: use {MIN_BLOCK_FRAMES} to {MAX_BLOCK_FRAMES} "
                "samples per packet"
            )
        if not 0 <= self.buffer_ms <= 2000:
            raise ConfigError(f"--buffer {self.buffer_ms}: use 0 to 2000 ms")
        if self.seconds is not None and not self.seconds > 0:
            raise ConfigError(f"--seconds {self.seconds}: use a positive number")

    @property
    def block_s(self) -> float:
        return self.block_frames / self.rate_hz


def parse_hostport(text: str, default_port: int = DEFAULT_PORT) -> tuple[str, int]:
    """Parse ``HOST``, ``HOST:PORT``, ``[V6]:PORT`` or ``V6``; raise ConfigError."""
    text = text.strip()
    host, port = text, default_port
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            raise ConfigError(f"address {text!r}: missing ']'")
        host, rest = text[1:end], text[end + 1 :]
        if rest:
            if not rest.startswith(":"):
                raise ConfigError(f"address {text!r}: expected [HOST]:PORT")
            port = _port(rest[1:], text)
    elif text.count(":") == 1:
        host, p = text.split(":")
        port = _port(p, text)
    if not host:
        raise ConfigError(f"address {text!r}: missing host")
    return host, port


def _port(p: str, text: str) -> int:
    if not (p.isascii() and p.isdigit()) or not 0 < int(p) < 65536:
        raise ConfigError(f"address {text!r}: port must be 1..65535")
    return int(p)
