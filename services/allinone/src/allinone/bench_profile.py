"""Where a server process spends its time under load: py-spy, when installed (never installed from here).

`py-spy record --format raw` samples the process while the load runs; the collapsed stacks are reduced
to the functions with the most samples on the stack (inclusive) and at the top of it (self).
Set `PY_SPY=/path/to/py-spy` when it is not on PATH.
"""

from __future__ import annotations

import collections
import os
import re
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from common.settings import SERVICES

_FRAME = re.compile(r"^(?P<func>.*?) \((?P<path>[^()]*?)(?::\d+)?\)$")
WORKSPACE_PACKAGES = frozenset({*SERVICES, "common"})  # allinone frames only wrap the loop
# Samples of pool threads waiting for work are idle time, not cost.
_IDLE_LEAVES = ("_worker (concurrent/futures/thread.py)", "wait (threading.py)")


@dataclass
class Profile:
    """Sample shares: self time per package and per function, and project functions on the stack."""

    samples: int
    seconds: float
    by_package: list[tuple[str, float]] = field(default_factory=list)
    self_share: list[tuple[str, float]] = field(default_factory=list)
    project_inclusive: list[tuple[str, float]] = field(default_factory=list)


def py_spy_path() -> str | None:
    """py-spy from PY_SPY or PATH."""
    candidate = os.environ.get("PY_SPY")
    if candidate and Path(candidate).exists():
        return candidate
    return shutil.which("py-spy")


def _parse(frame: str) -> tuple[str, str, bool]:
    """(short name, package, is workspace code) of one py-spy frame `func (path:line)`."""
    match = _FRAME.match(frame.strip())
    if match is None:
        return (frame.strip() or "?", "?", False)
    path = match["path"]  # py-spy shortens paths to the sys.path entry they were imported from
    path = re.sub(r".*/site-packages/", "", path)
    path = re.sub(r".*/src/", "", path)
    path = re.sub(r".*/lib/python3\.\d+/", "", path)
    package = path.split("/", 1)[0].removesuffix(".py")
    return (f"{match['func']} ({path})", package, package in WORKSPACE_PACKAGES and "/" in path)


def summarise(raw: str, seconds: float, top: int = 15) -> Profile:
    """Reduce py-spy's raw (collapsed) output to the packages and functions that cost the most."""
    self_counts: collections.Counter[str] = collections.Counter()
    packages: collections.Counter[str] = collections.Counter()
    project: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.splitlines():
        stack, _, count = line.rstrip().rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = [_parse(f) for f in stack.split(";") if f.strip()]
        if not frames or frames[-1][0] in _IDLE_LEAVES:
            continue
        n = int(count)
        total += n
        leaf, package, _ = frames[-1]
        self_counts[leaf] += n
        packages[package] += n
        for name in {name for name, _, is_project in frames if is_project}:
            project[name] += n
    if total == 0:
        return Profile(0, seconds)
    return Profile(
        samples=total,
        seconds=seconds,
        by_package=[(name, n / total) for name, n in packages.most_common(top)],
        self_share=[(name, n / total) for name, n in self_counts.most_common(top)],
        project_inclusive=[(name, n / total) for name, n in project.most_common(top)],
    )


def profile_during(pid: int, seconds: float, load: Callable[[], object], workdir: Path, rate: int = 250) -> Profile:
    """Sample `pid` with py-spy while `load()` runs (call it with a load of about `seconds`)."""
    binary = py_spy_path()
    if binary is None:
        raise RuntimeError("py-spy is not installed")
    out = workdir / f"py-spy-{pid}-{int(time.time())}.txt"
    cmd = [binary, "record", "-p", str(pid), "-d", str(max(1, round(seconds))), "-r", str(rate), "-f", "raw"]
    cmd += ["-o", str(out)]
    spy = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # noqa: S603 - fixed argv
    try:
        load()
        _, err = spy.communicate(timeout=seconds + 60)
    finally:
        if spy.poll() is None:
            spy.kill()
            spy.wait(timeout=10)
    if not out.exists():
        raise RuntimeError(f"py-spy wrote no profile: {err.decode(errors='replace').strip()[-500:]}")
    return summarise(out.read_text(errors="replace"), seconds)
