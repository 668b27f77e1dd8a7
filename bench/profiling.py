"""Reading the gateway's cProfile: where its time went, by package and by function.

cProfile's default clock is wall time, so the event loop's wait in `epoll.poll` is idle time,
not work: it is shown apart and left out of the percentages. cProfile also roughly doubles the
cost of call-heavy asyncio code, so a profiled run's req/s is not comparable with an unprofiled
one; the *shares* are what to read. A coroutine's "calls" count each of its resumptions, so
calls/update of async functions are higher than the awaits in the code.
"""

from __future__ import annotations

import pstats
import re
from collections import Counter
from pathlib import Path

from bench.procs import REPO

_IDLE = "idle: waiting in epoll"
_OWN = ("gateway", "bot", "handlers")
_SITE = re.compile(r"[/\\](?:site|dist)-packages[/\\]([^/\\]+)")
_STDLIB = re.compile(r"[/\\]python3\.\d+[/\\]([^/\\]+)")
# Built-ins have no file; their names say what they are.
_BUILTINS = (
    ("select.epoll", _IDLE),
    ("_socket", "C: socket send/recv"),
    ("pydantic_core", "pydantic"),
    ("_json", "C: json"),
    ("json", "C: json"),
    ("_hashlib", "C: hashing"),
    ("hiredis", "redis (hiredis parser)"),
    ("_asyncio", "asyncio (C)"),
    ("_contextvars", "asyncio (C)"),
)


def area(filename: str, function: str) -> str:
    """The package a profiled function belongs to."""
    if filename == "~":
        for marker, name in _BUILTINS:
            if marker in function:
                return name
        return "C: other built-ins"
    path = Path(filename)
    if path.is_relative_to(REPO):
        top = path.relative_to(REPO).parts[0]
        return f"frontdesk: {top}" if top in _OWN else f"repo: {top}"
    if match := _SITE.search(filename):
        return match.group(1).removesuffix(".py").split(".")[0]
    if match := _STDLIB.search(filename):
        return "stdlib: " + match.group(1).removesuffix(".py")
    return "other"


def _label(filename: str, line: int, function: str) -> str:
    if filename == "~":
        return function
    path = Path(filename)
    short = path.relative_to(REPO) if path.is_relative_to(REPO) else Path(*path.parts[-2:])
    return f"{short}:{line}({function})"


def summary(path: Path, updates: int, name: str = "gateway", top: int = 20) -> list[str]:
    """Lines to print: self time by package, then the top functions (µs per update)."""
    stats = pstats.Stats(str(path))
    entries = stats.stats  # type: ignore[attr-defined]
    by_area: Counter[str] = Counter()
    for (filename, _line, function), (_cc, _nc, tt, _ct, _callers) in entries.items():
        by_area[area(filename, function)] += tt
    idle = by_area.pop(_IDLE, 0.0)
    busy = sum(by_area.values()) or 1.0
    per = 1e6 / max(1, updates)
    lines = [
        f"{name} profile (measured windows and drain, {updates} updates; busy {busy:.1f} s, "
        f"idle in epoll {idle:.1f} s; µs/update = self time / updates):",
        f"  {'package':<30} {'self s':>7} {'share':>6} {'µs/update':>10}",
    ]
    for name, seconds in by_area.most_common(14):
        lines.append(
            f"  {name:<30} {seconds:7.2f} {100 * seconds / busy:5.1f}% {seconds * per:10.1f}"
        )
    lines.append(f"  top functions by self time:  {'calls/update':>12} {'µs/update':>10}")
    ranked = sorted(entries.items(), key=lambda item: item[1][2], reverse=True)
    shown = 0
    for (filename, line, function), (_cc, calls, tt, _ct, _callers) in ranked:
        if area(filename, function) == _IDLE:
            continue
        label = _label(filename, line, function)[:70]
        lines.append(f"    {label:<70} {calls / max(1, updates):8.2f} {tt * per:10.1f}")
        shown += 1
        if shown >= top:
            break
    lines.append("  frontdesk functions by cumulative time (includes callees):")
    own = [
        (key, value)
        for key, value in entries.items()
        if area(key[0], key[2]).startswith("frontdesk")
    ]
    for (filename, line, function), (_cc, calls, _tt, ct, _callers) in sorted(
        own, key=lambda item: item[1][3], reverse=True
    )[:12]:
        label = _label(filename, line, function)[:70]
        lines.append(f"    {label:<70} {calls / max(1, updates):8.2f} {ct * per:10.1f}")
    return lines
