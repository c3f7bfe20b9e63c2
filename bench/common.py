"""What every module of the benchmark shares: its paths, a few constants, the log line, and how a path is shown.

Imports nothing of the benchmark's own, so any module may import it (see bench/README.md for the layout).
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
OUT = BENCH / "out"
RESULTS = BENCH / "results.md"
if str(ROOT) not in sys.path:  # integration_tests (the fake's names, the catalog helpers) lives at the root
    sys.path.insert(0, str(ROOT))

NO_LIMIT = 10**9  # the fake always sends x-ratelimit-* headers; "no rate limit" is a limit nothing reaches
MB = 1024 * 1024


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def in_repository(path: str | Path) -> str | None:
    """The path relative to the repository root (posix), or None when it is outside the repository."""
    absolute = Path(os.path.abspath(path))
    for root, candidate in ((ROOT, absolute), (ROOT.resolve(), absolute.resolve())):
        if candidate.is_relative_to(root):
            return candidate.relative_to(root).as_posix()
    return None


def shown(path: str | Path, description: str = "outside the repository", anchor: Path | None = None) -> str:
    """A path as the results print it: relative to the repository root when it is inside it; else never verbatim
    (a home or /tmp directory says nothing to a reader and names this machine): `<description>/` and the part of
    the path under `anchor` (e.g. a venv's `bin/source-kustomer`), or only its name."""
    inside = in_repository(path)
    if inside is not None:
        return inside
    absolute = Path(os.path.abspath(path))
    tail = absolute.relative_to(anchor).as_posix() if anchor and absolute.is_relative_to(anchor) else absolute.name
    return f"<{description}>/{tail}"


_PYTHON_LIB = re.compile(r"(?<![\w.<>-])/[^\s\"'`()<>]*?/(lib/python3\.\d+/)")


def scrub(text: str) -> str:
    """The safety net of the report: absolute paths of this machine in free text (a traceback, an error message)
    become repository-relative (the checkout), `<python>/lib/python3.N/...` (an interpreter or venv), `~` (home)
    or `<tmp>`."""
    for root in dict.fromkeys((str(ROOT.resolve()), str(ROOT))):
        text = re.sub(r"(?<![\w.-])" + re.escape(root) + r"(?:/|(?![\w.-]))", lambda m: "" if m[0][-1:] == "/" else ".",
                      text)
    text = _PYTHON_LIB.sub(r"<python>/\1", text)
    home, tmp = str(Path.home()), tempfile.gettempdir()
    if len(home) > 1:
        text = re.sub(r"(?<![\w.-])" + re.escape(home) + r"(?![\w.-])", "~", text)
    for directory in dict.fromkeys((tmp, "/tmp")):
        text = re.sub(r"(?<![\w.-])" + re.escape(directory) + r"(?=/)", "<tmp>", text)
    return text
