"""Pairing: short one-time codes, the password-authenticated key exchange and call keys.

Pure core (no sockets, no clock of its own). The flow, carried by the handshake
messages of :mod:`rtai.handshake` (docs/security.md has the whole picture):

1. The listener holds a secret: a one-time code such as ``7-crystal-harbor`` that
   :class:`Pairing` generates with :mod:`secrets` (a number 1..99 and two words of
   :data:`WORDS`, about 23 bits), or a fixed passphrase (``--passphrase``,
   ``--key-file``). The caller is given the same secret.
2. The caller's HELLO carries its SPAKE2 message (the ``spake2`` package, Ed25519
   group, identities ``rtai-caller``/``rtai-listener``); the listener answers in its
   ACCEPT with its own SPAKE2 message. Both get a 32-byte shared secret that an
   eavesdropper cannot compute and an active attacker can test one password guess
   against per exchange.
3. Both hash the transcript (the HELLO and the ACCEPT as sent, without the
   confirmation field) and derive with HKDF-SHA256 the SRTP/SRTCP keys and salts of
   each direction and two key-confirmation keys (:func:`derive_call_keys`).
4. ACCEPT carries the listener's confirmation MAC, the caller's CONFIRM carries its
   own. A wrong code shows at the caller when the listener's MAC does not verify and
   at the listener when the caller's does not (or the caller says so).

Every call runs a fresh exchange with fresh ephemeral SPAKE2 scalars, so recorded
calls stay private even if the code or passphrase leaks later (forward secrecy).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from spake2 import SPAKE2_A, SPAKE2_B

from rtai.rtp.srtp import KEY_BYTES, SALT_BYTES, SrtpKeys

SECURE = "srtp-aes128gcm-spake2-v1"  # what an encrypting peer puts in HELLO.security
INSECURE = "insecure"
CODE_NUMBER_MAX = 99
MAX_WRONG_CODES = 3  # wrong attempts before the listener issues a new code
PAKE_MESSAGE_BYTES = 33
CONFIRM_BYTES = 32
MIN_KEY_FILE_BYTES = 16
MAX_KEY_FILE_BYTES = 4096
ID_CALLER = b"rtai-caller"
ID_LISTENER = b"rtai-listener"

# Common, easily spelled English nouns, chosen for this project; no two share a
# spelling and none is a prefix-typo of another in practice.
WORDS: tuple[str, ...] = (
    "acorn",
    "actor",
    "adult",
    "alarm",
    "album",
    "alley",
    "amber",
    "angle",
    "ankle",
    "apple",
    "apron",
    "arena",
    "arrow",
    "aspen",
    "atlas",
    "attic",
    "autumn",
    "award",
    "bacon",
    "badge",
    "baker",
    "bamboo",
    "banjo",
    "barley",
    "basil",
    "basket",
    "beach",
    "beacon",
    "beard",
    "beaver",
    "berry",
    "bison",
    "blanket",
    "blossom",
    "bonnet",
    "border",
    "bottle",
    "bounty",
    "bread",
    "breeze",
    "brick",
    "bridge",
    "brook",
    "broom",
    "bubble",
    "bucket",
    "buffalo",
    "bugle",
    "button",
    "cabin",
    "cactus",
    "camel",
    "candle",
    "canoe",
    "canyon",
    "carbon",
    "carpet",
    "carrot",
    "castle",
    "cattle",
    "cedar",
    "cellar",
    "chalk",
    "channel",
    "cherry",
    "chess",
    "chimney",
    "cider",
    "cinema",
    "circle",
    "citrus",
    "clover",
    "coast",
    "cobalt",
    "cocoa",
    "comet",
    "copper",
    "coral",
    "cotton",
    "cousin",
    "coyote",
    "cradle",
    "crane",
    "crater",
    "crayon",
    "cricket",
    "crystal",
    "cupboard",
    "curtain",
    "cushion",
    "daisy",
    "dancer",
    "delta",
    "desert",
    "diamond",
    "dinner",
    "dolphin",
    "donkey",
    "dragon",
    "drawer",
    "dream",
    "drum",
    "eagle",
    "easel",
    "echo",
    "elbow",
    "ember",
    "engine",
    "falcon",
    "feather",
    "fence",
    "fern",
    "ferry",
    "fiddle",
    "field",
    "finch",
    "flag",
    "flannel",
    "flute",
    "forest",
    "fossil",
    "fountain",
    "fox",
    "garden",
    "garlic",
    "gazelle",
    "ginger",
    "glacier",
    "globe",
    "goose",
    "granite",
    "grape",
    "gravel",
    "guitar",
    "hammer",
    "harbor",
    "harvest",
    "hazel",
    "helmet",
    "heron",
    "hollow",
    "honey",
    "horizon",
    "hotel",
    "island",
    "ivory",
    "jacket",
    "jasmine",
    "jelly",
    "jungle",
    "kayak",
    "kettle",
    "kitten",
    "ladder",
    "lagoon",
    "lantern",
    "lemon",
    "lentil",
    "library",
    "lilac",
    "lily",
    "linen",
    "lobster",
    "locket",
    "lotus",
    "magnet",
    "mango",
    "maple",
    "marble",
    "meadow",
    "melon",
    "mirror",
    "mitten",
    "monkey",
    "moose",
    "mosaic",
    "muffin",
    "museum",
    "nectar",
    "needle",
    "nickel",
    "noodle",
    "oasis",
    "ocean",
    "olive",
    "onion",
    "orange",
    "orbit",
    "orchid",
    "otter",
    "owl",
    "oyster",
    "paddle",
    "palace",
    "panda",
    "parcel",
    "parrot",
    "pasta",
    "peach",
    "peanut",
    "pebble",
    "pelican",
    "pencil",
    "pepper",
    "piano",
    "pickle",
    "pigeon",
    "pillow",
    "pine",
    "planet",
    "plum",
    "pocket",
    "poem",
    "pony",
    "poppy",
    "potato",
    "puffin",
    "pumpkin",
    "puzzle",
    "quilt",
    "rabbit",
    "radio",
    "raft",
    "rainbow",
    "raven",
    "ribbon",
    "river",
    "robin",
    "rocket",
    "rose",
    "saddle",
    "salmon",
    "sandal",
    "satin",
    "scarf",
    "shadow",
    "shell",
    "silver",
    "sketch",
    "sled",
    "slipper",
    "socket",
    "spider",
    "spoon",
    "spruce",
    "squash",
    "statue",
    "stone",
    "storm",
    "sugar",
    "summer",
    "sunset",
    "swan",
    "table",
    "tango",
    "teapot",
    "temple",
    "thimble",
    "thunder",
    "tiger",
    "timber",
    "tomato",
    "topaz",
    "tractor",
    "trumpet",
    "tulip",
    "tunnel",
    "turtle",
    "umbrella",
    "valley",
    "velvet",
    "violin",
    "voyage",
    "wagon",
    "walnut",
    "walrus",
    "willow",
    "window",
    "winter",
    "wizard",
    "wombat",
    "yarrow",
    "yogurt",
    "zebra",
    "zinnia",
)
_WORD_SET = frozenset(WORDS)


class PairingError(ValueError):
    """A code, passphrase or key-exchange message that cannot be used; the message
    says what to do, in one line."""


def new_code(rng: secrets.SystemRandom | None = None) -> str:
    """A fresh one-time code, e.g. ``7-crystal-harbor``."""
    r = rng or secrets.SystemRandom()
    n = r.randint(1, CODE_NUMBER_MAX)
    return f"{n}-{r.choice(WORDS)}-{r.choice(WORDS)}"


def normalize_code(text: str) -> str:
    """Accept what people type (``7 Crystal Harbor``, ``7-crystal-harbor``) and return
    the canonical code, or raise :class:`PairingError`."""
    parts = [p for p in re.split(r"[\s\-_.]+", text.strip().lower()) if p]
    if len(parts) != 3 or not parts[0].isascii() or not parts[0].isdigit():
        raise PairingError(
            f"code {text.strip()[:40]!r} is not a number and two words like 7-crystal-harbor; "
            "use the code 'rtai listen' printed"
        )
    n = int(parts[0])
    if not 1 <= n <= CODE_NUMBER_MAX:
        raise PairingError(f"code number {n} out of range 1..{CODE_NUMBER_MAX}")
    for w in parts[1:]:
        if w not in _WORD_SET:
            raise PairingError(
                f"{w[:20]!r} is not a word rtai codes use; check the code 'rtai listen' printed"
            )
    return f"{n}-{parts[1]}-{parts[2]}"


def code_password(code: str) -> bytes:
    return b"rtai-code:" + normalize_code(code).encode()


def passphrase_password(text: str) -> bytes:
    if not text:
        raise PairingError("--passphrase is empty; give the same passphrase on both sides")
    return b"rtai-passphrase:" + text.encode("utf-8")


def key_file_password(path: str | Path) -> bytes:
    try:
        data = Path(path).read_bytes()
    except OSError as e:
        raise PairingError(f"--key-file {path}: {e.strerror or e}") from None
    data = data.strip()
    if not MIN_KEY_FILE_BYTES <= len(data) <= MAX_KEY_FILE_BYTES:
        raise PairingError(
            f"--key-file {path}: use {MIN_KEY_FILE_BYTES} to {MAX_KEY_FILE_BYTES} bytes of "
            "secret (e.g. head -c 32 /dev/urandom | base64 > FILE)"
        )
    return b"rtai-keyfile:" + data


class Pairing:
    """The secret one peer holds for authenticating calls.

    A listener made with :meth:`issue_codes` holds a one-time code: it changes after
    every successful call and after :data:`MAX_WRONG_CODES` wrong attempts. A fixed
    secret (:meth:`from_code` for a caller, :meth:`from_passphrase`,
    :meth:`from_key_file`) never changes.
    """

    def __init__(self, password: bytes, code: str | None = None, one_time: bool = False):
        self.password = password
        self.code = code
        self.one_time = one_time
        self.wrong_attempts = 0
        self.codes_issued = 1 if one_time else 0

    @classmethod
    def issue_codes(cls) -> Pairing:
        code = new_code()
        return cls(code_password(code), code, one_time=True)

    @classmethod
    def from_code(cls, text: str) -> Pairing:
        code = normalize_code(text)
        return cls(code_password(code), code)

    @classmethod
    def from_passphrase(cls, text: str) -> Pairing:
        return cls(passphrase_password(text))

    @classmethod
    def from_key_file(cls, path: str | Path) -> Pairing:
        return cls(key_file_password(path))

    @property
    def kind(self) -> str:
        return "code" if self.code is not None else "passphrase"

    def _reissue(self) -> str:
        self.code = new_code()
        self.password = code_password(self.code)
        self.wrong_attempts = 0
        self.codes_issued += 1
        return self.code

    def wrong_attempt(self) -> str | None:
        """Count a failed attempt; return the new code when this one is now retired."""
        self.wrong_attempts += 1
        if self.one_time and self.wrong_attempts >= MAX_WRONG_CODES:
            return self._reissue()
        return None

    def call_made(self) -> str | None:
        """A call authenticated: a one-time code is spent; return the next one."""
        self.wrong_attempts = 0
        return self._reissue() if self.one_time else None


# -- the key exchange -------------------------------------------------------------------


@dataclass(frozen=True)
class CallKeys:
    """Everything one call's exchange yields."""

    caller_to_listener: SrtpKeys
    listener_to_caller: SrtpKeys
    caller_confirm_key: bytes
    listener_confirm_key: bytes

    def tx_rx(self, role: str) -> tuple[SrtpKeys, SrtpKeys]:
        """(keys to seal with, keys to open with) for ``role`` caller or listener."""
        if role == "caller":
            return self.caller_to_listener, self.listener_to_caller
        return self.listener_to_caller, self.caller_to_listener


class CallerExchange:
    """The caller's half of one SPAKE2 exchange (single use)."""

    def __init__(self, password: bytes) -> None:
        self._spake = SPAKE2_A(password, idA=ID_CALLER, idB=ID_LISTENER)
        self.message = self._spake.start()
        self._done = False

    def finish(self, listener_message: bytes) -> bytes:
        if self._done:
            raise PairingError("key exchange already finished")
        self._done = True
        return _finish(self._spake, listener_message)


def listener_exchange(password: bytes, caller_message: bytes) -> tuple[bytes, bytes]:
    """The listener's half: (its SPAKE2 message, the shared secret)."""
    spake = SPAKE2_B(password, idA=ID_CALLER, idB=ID_LISTENER)
    message = spake.start()
    return message, _finish(spake, caller_message)


def _finish(spake, message: bytes) -> bytes:
    if len(message) != PAKE_MESSAGE_BYTES:
        raise PairingError("key-exchange message of the wrong size")
    try:
        return spake.finish(message)
    except Exception as e:  # the library raises its own errors and ValueError for bad points
        raise PairingError(f"unusable key-exchange message ({type(e).__name__})") from None


def transcript_hash(hello_wire: bytes, accept_wire: bytes) -> bytes:
    """SHA-256 over both handshake messages as sent (ACCEPT without its confirmation)."""
    h = hashlib.sha256(b"rtai transcript v1")
    for part in (hello_wire, accept_wire):
        h.update(len(part).to_bytes(4, "big"))
        h.update(part)
    return h.digest()


def derive_call_keys(shared: bytes, transcript: bytes) -> CallKeys:
    """HKDF-SHA256: four SRTP/SRTCP keys and salts (two per direction) and two
    confirmation keys, bound to the transcript."""
    per_dir = 2 * (KEY_BYTES + SALT_BYTES)
    okm = HKDF(
        algorithm=hashes.SHA256(),
        length=2 * per_dir + 2 * CONFIRM_BYTES,
        salt=b"rtai pairing v1",
        info=b"rtai call keys|" + transcript,
    ).derive(shared)

    def direction(b: bytes) -> SrtpKeys:
        k, s = KEY_BYTES, SALT_BYTES
        return SrtpKeys(b[:k], b[k : k + s], b[k + s : 2 * k + s], b[2 * k + s : 2 * k + 2 * s])

    c2l, l2c = okm[:per_dir], okm[per_dir : 2 * per_dir]
    conf = okm[2 * per_dir :]
    return CallKeys(direction(c2l), direction(l2c), conf[:CONFIRM_BYTES], conf[CONFIRM_BYTES:])


def confirm_mac(key: bytes, role: str, transcript: bytes) -> str:
    """The key-confirmation value ``role`` sends, hex."""
    return hmac.new(key, role.encode() + b"|" + transcript, hashlib.sha256).hexdigest()


def confirm_ok(key: bytes, role: str, transcript: bytes, value: str) -> bool:
    return hmac.compare_digest(confirm_mac(key, role, transcript), value)


def decode_hex(text: str, size: int, what: str) -> bytes:
    """Strict hex of exactly ``size`` bytes, or :class:`PairingError`."""
    if len(text) != 2 * size:
        raise PairingError(f"{what} of the wrong size")
    try:
        return bytes.fromhex(text)
    except ValueError:
        raise PairingError(f"{what} is not hex") from None


# -- rate limiting ----------------------------------------------------------------------


class TokenBucket:
    def __init__(self, rate_per_s: float, burst: float, now_s: float) -> None:
        self.rate = rate_per_s
        self.burst = burst
        self.tokens = burst
        self.t = now_s

    def allow(self, now_s: float) -> bool:
        self.tokens = min(self.burst, self.tokens + (now_s - self.t) * self.rate)
        self.t = now_s
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


class AttemptLimiter:
    """Limits key exchanges (each costs the listener ~10 ms of CPU) per source host
    and in all: a burst, then a steady rate. Remembers at most ``max_sources`` hosts."""

    def __init__(
        self,
        per_source_rate: float = 0.5,
        per_source_burst: float = 3,
        global_rate: float = 5.0,
        global_burst: float = 10,
        max_sources: int = 1024,
    ) -> None:
        self._args = (per_source_rate, per_source_burst)
        self._global_args = (global_rate, global_burst)
        self._global: TokenBucket | None = None
        self._sources: OrderedDict[str, TokenBucket] = OrderedDict()
        self.max_sources = max_sources
        self.refused = 0

    def allow(self, source: str, now_s: float) -> bool:
        if self._global is None:
            self._global = TokenBucket(*self._global_args, now_s)
        bucket = self._sources.get(source)
        if bucket is None:
            bucket = TokenBucket(*self._args, now_s)
            self._sources[source] = bucket
            if len(self._sources) > self.max_sources:
                self._sources.popitem(last=False)
        else:
            self._sources.move_to_end(source)
        if not bucket.allow(now_s) or not self._global.allow(now_s):
            self.refused += 1
            return False
        return True
