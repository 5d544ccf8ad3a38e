"""The live one-line status shown while a call runs (a face, using rich)."""

from __future__ import annotations

from rich.text import Text


def _f(v, fmt: str, unit: str = "") -> str:
    return "--" if v is None else f"{v:{fmt}}{unit}"


def status_line(s: dict) -> Text:
    """Render one statistics snapshot as a single line."""
    t = Text()
    t.append(f"{s.get('state', ''):8} ", style="bold")
    if s.get("code") and not s.get("call"):  # what the next caller must give
        t.append(f"code {s['code']}  ", style="bold cyan")
    elif s.get("encrypted") is False:
        t.append("UNENCRYPTED  ", style="bold yellow")
    talk = s.get("talk")
    if talk and talk != "open":  # muted, ptt (waiting for the key), talk (held) or locked
        green = talk in ("talk", "locked")
        t.append(f"[{talk.upper()}] ", style="bold green" if green else "bold red")
    t.append(f"in {_f(s.get('level_in_dbfs'), '6.1f')} dBFS  ")
    t.append(f"out {_f(s.get('level_out_dbfs'), '6.1f')} dBFS  ")
    if s.get("call"):
        t.append(f"latency {_f(s.get('latency_ms'), '.1f', ' ms')}  ", style="cyan")
        t.append(f"rtt {_f(s.get('rtt_ms'), '.1f', ' ms')}  ")
        t.append(f"loss {s.get('lost', 0)}  conceal {s.get('concealed', 0)}  ")
        t.append(f"jitter {_f(s.get('jitter_ms'), '.2f', ' ms')}  ")
        t.append(f"buffer {_f(s.get('buffer_ms'), '.1f', ' ms')}  ")
        t.append(f"{_f(s.get('bitrate_kbps'), '.0f', ' kbit/s')}")
    if s.get("vad_silent") is not None and s.get("processing", "off") != "off":
        t.append(f"  speech {_f(s.get('speech'), '.1f')}")
    if s.get("xruns"):
        t.append(f"  xruns {s['xruns']}", style="red")
    return t
