"""Helpers shared by the benchmark scripts: who ran it where, and writing docs/benchmarks.md.

Every benchmark owns one section of docs/benchmarks.md, between the markers
``<!-- bench:NAME:start -->`` and ``<!-- bench:NAME:end -->``. :func:`write_section`
replaces only that section (appending it if absent, creating the file with a short
header if missing), reading the file just before it writes, under a lock, and writes
atomically, so two benchmarks never clobber each other's tables and a crash never
leaves a half-written file.
"""

from __future__ import annotations

import datetime as _dt
import fcntl
import os
import platform
import re
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BENCHMARKS_MD = REPO / "docs" / "benchmarks.md"

HEADER = """# Benchmarks

Each section below is written by one script in `bench/`; run the command it shows to
reproduce it. Numbers depend on the machine, so every section names its own.
"""


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (or what the platform module knows)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() in ("model name", "Model", "Hardware"):
                    return value.strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def os_name() -> str:
    """Distribution name and kernel, e.g. ``Debian GNU/Linux 12 (bookworm), Linux 6.1``."""
    pretty = ""
    try:
        with open("/etc/os-release", encoding="utf-8") as f:
            for line in f:
                if line.startswith("PRETTY_NAME="):
                    pretty = line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    kernel = f"{platform.system()} {platform.release()}"
    return f"{pretty}, {kernel}" if pretty else kernel


def machine() -> dict[str, str]:
    """What the numbers were measured on: cores, CPU model, OS, Python, load average."""
    info = {
        "cores": str(os.cpu_count() or "?"),
        "cpu": cpu_model(),
        "os": os_name(),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
    }
    try:
        info["load"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        pass
    return info


def machine_line(info: dict[str, str] | None = None) -> str:
    info = info or machine()
    s = f"{info['cores']} cores, {info['cpu']}; {info['os']}; {info['python']}"
    if "load" in info:
        s += f"; load average at start {info['load']}"
    return s


def tool_version(argv: list[str]) -> str:
    """First line a tool prints for its version ('' if it cannot be run)."""
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    text = (out.stdout or out.stderr).strip()
    return text.splitlines()[0] if text else ""


def now_stamp() -> str:
    """Local date and time with its UTC offset, to the minute."""
    return _dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %z")


def reproduce_command(script: str, argv: list[str] | None = None) -> str:
    """The command line, run from the repository root, that reproduces this run."""
    args = sys.argv[1:] if argv is None else argv
    return shlex.join([".venv/bin/python", script, *args])


def _markers(name: str) -> tuple[str, str]:
    return f"<!-- bench:{name}:start -->", f"<!-- bench:{name}:end -->"


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None


def write_section(name: str, body: str, path: Path = BENCHMARKS_MD) -> None:
    """Replace the ``name`` section of ``path`` with ``body`` (atomically).

    Benchmarks may finish at the same time, each writing its own section. The file is
    read only now, right before writing, under an exclusive lock on its directory that
    every writer using this function takes; and if it still changed between the read
    and the rename (a writer that does not lock), the write is redone on the new text.
    Either way only this section changes and another writer's section is kept.
    """
    start, end = _markers(name)
    block = f"{start}\n{body.strip()}\n{end}"
    pattern = re.compile(re.escape(start) + r".*?" + re.escape(end), re.DOTALL)
    path.parent.mkdir(parents=True, exist_ok=True)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        fcntl.flock(dir_fd, fcntl.LOCK_EX)
        for _attempt in range(10):
            before = _read(path)
            text = HEADER if before is None else before
            if pattern.search(text):
                text = pattern.sub(lambda _m: block, text, count=1)
            else:
                text = text.rstrip("\n") + "\n\n" + block
            text = text.rstrip("\n") + "\n"
            fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as f:
                    f.write(text)
                os.chmod(tmp, 0o644)
                if _read(path) != before:  # written meanwhile: start again from that
                    os.unlink(tmp)
                    continue
                os.replace(tmp, path)
                return
            except BaseException:
                try:
                    os.unlink(tmp)
                except OSError:
                    pass
                raise
        raise RuntimeError(f"{path} kept changing while writing section {name!r}")
    finally:
        os.close(dir_fd)  # releases the lock


def markdown_table(header: list[str], rows: list[list[str]], align: str | None = None) -> str:
    """A GitHub markdown table; ``align`` is one of l/r/c per column (default: right)."""
    align = align or "r" * len(header)
    rule = {"l": ":---", "r": "---:", "c": ":---:"}
    lines = [
        "| " + " | ".join(header) + " |",
        "| " + " | ".join(rule[a] for a in align) + " |",
    ]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)
