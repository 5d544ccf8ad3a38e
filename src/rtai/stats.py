"""The JSON statistics writer (a face): one object per line, appended each second."""

from __future__ import annotations

import json
from pathlib import Path
from typing import IO


class StatsWriter:
    """Appends JSON lines to ``path``; opening fails early with a one-line error."""

    def __init__(self, path: str | Path) -> None:
        try:
            self._f: IO[str] = open(path, "a", encoding="utf-8")  # noqa: SIM115
        except OSError as e:
            raise ValueError(f"cannot write stats to {path}: {e.strerror}") from None

    def write(self, snapshot: dict) -> None:
        self._f.write(json.dumps(snapshot, separators=(",", ":")) + "\n")
        self._f.flush()

    def close(self) -> None:
        self._f.close()
