"""The talk controls on the command line and at the terminal (a face).

Options: ``--aec/--no-aec``, ``--ns/--no-ns``, ``--agc/--no-agc`` and ``--vad/--no-vad``
(voice-activity DTX) are on by default when the input is a sound card and off when it
is a file or a generated signal (processing a test signal would change what the tests
compare); ``--ptt`` starts a call in push-to-talk mode.

Keys, read while stdin is a terminal: ``m`` mutes and unmutes; in push-to-talk mode,
holding space talks (a terminal sends no key release, so talking lasts while the
key's auto-repeat keeps arriving, see :class:`~rtai.processing.TalkControl`) and ``t``
locks talking on or off. Without a terminal (CI, pipes) no key is read and nothing
else changes.
"""

from __future__ import annotations

import argparse
import os
import select
import sys
import threading

from rtai.audio import files, signals
from rtai.processing import ProcessingOptions, TalkControl, webrtc_available

KEYS_HELP = "keys: m mute/unmute, hold space to talk, t lock talking on/off"


def add_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group(
        "capture processing (default: on for a sound card input, off for files and signals)"
    )
    on_off = argparse.BooleanOptionalAction
    g.add_argument("--aec", action=on_off, help="acoustic echo cancellation")
    g.add_argument("--ns", action=on_off, help="noise suppression")
    g.add_argument("--agc", action=on_off, help="automatic gain control")
    g.add_argument(
        "--vad", action=on_off, help="voice-activity DTX: blocks of silence are not sent"
    )
    g.add_argument(
        "--ptt",
        action="store_true",
        help=f"push-to-talk: send only while space is held or talking is locked ({KEYS_HELP})",
    )
    g.add_argument(
        "--processing-engine", choices=("auto", "rtai", "webrtc", "numpy"), default="auto",
        help="auto/rtai: rtai's echo canceller, then WebRTC's NS and AGC if pywebrtc-audio "
        "is installed; webrtc: WebRTC's whole module (AEC3); numpy: rtai's alone",
    )  # fmt: skip


def device_input(spec: str | None) -> bool:
    """True when ``--input`` names a sound card (or is left to the default one)."""
    if spec is None:
        return True
    return not (signals.is_signal_spec(spec) or files.is_file_spec(spec))


def options_from_args(args: argparse.Namespace) -> ProcessingOptions:
    default = device_input(getattr(args, "input", None))

    def pick(name: str) -> bool:
        v = getattr(args, name, None)
        return default if v is None else bool(v)

    engine = getattr(args, "processing_engine", "auto")
    if engine == "webrtc" and not webrtc_available():
        raise ValueError(
            "--processing-engine webrtc: pywebrtc-audio is not installed "
            "(pip install pywebrtc-audio)"
        )
    return ProcessingOptions(
        aec=pick("aec"),
        ns=pick("ns"),
        agc=pick("agc"),
        vad=pick("vad"),
        ptt=bool(getattr(args, "ptt", False)),
        engine=engine,
    )


class KeyReader:
    """Reads single keys from a terminal on a thread and applies them to ``talk``.

    ``start`` returns False (and does nothing) when stdin is not a terminal. The
    terminal's settings are restored by ``stop``.
    """

    def __init__(self, talk: TalkControl, stream=None) -> None:
        self.talk = talk
        self.stream = stream if stream is not None else sys.stdin
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._saved = None
        self._fd: int | None = None

    def start(self) -> bool:
        try:
            fd = self.stream.fileno()
        except (AttributeError, OSError, ValueError):
            return False
        if not os.isatty(fd):
            return False
        import termios
        import tty

        try:
            self._saved = termios.tcgetattr(fd)
            tty.setcbreak(fd)
        except termios.error:
            return False
        self._fd = fd
        self._thread = threading.Thread(target=self._run, name="rtai-keys", daemon=True)
        self._thread.start()
        return True

    def handle(self, key: str) -> None:
        if key in ("m", "M"):
            self.talk.toggle_mute()
        elif key == " ":
            self.talk.press_talk()
        elif key in ("t", "T"):
            self.talk.toggle_talk()

    def _run(self) -> None:
        fd = self._fd
        while not self._stop.is_set():
            try:
                ready, _, _ = select.select([fd], [], [], 0.1)
                if not ready:
                    continue
                data = os.read(fd, 16)
            except OSError:
                return
            if not data:
                return
            for ch in data.decode(errors="ignore"):
                self.handle(ch)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=1.0)
        if self._saved is not None and self._fd is not None:
            import termios

            try:
                termios.tcsetattr(self._fd, termios.TCSADRAIN, self._saved)
            except termios.error:
                pass
            self._saved = None
