"""`python -m bench understanding`: how well and how fast typed requests are understood.

Scores `bot.understanding.understand` on the corpus of real-style requests
(`tests/data/understanding_corpus.json`) against the demo salon's catalogue, and times it: the
last line is `understanding: intents=<%> entities=<%> held_out_intents=<%> us_per_message=<µs>`.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from bot.catalogue import Master, Service
from bot.understanding import Understood, understand

CORPUS = Path(__file__).resolve().parents[1] / "tests" / "data" / "understanding_corpus.json"

# The demo salon as the Cal.com sandbox seeds it (gateway/sandbox/calcom.py, seed_demo_salon).
MASTERS = {"Anna": Master(1, "Anna Petrova"), "Maria": Master(2, "Maria Ivanova"),
           "Olga": Master(3, "Olga Smirnova")}  # fmt: skip
_A, _M, _O = MASTERS["Anna"], MASTERS["Maria"], MASTERS["Olga"]
DEMO_SERVICES = (
    Service("womens-haircut", "Women's haircut", 60, "2500", category="Hair", masters=(_A, _O)),
    Service("mens-haircut", "Men's haircut", 30, "1200", category="Hair", masters=(_A, _O)),
    Service("hair-colouring", "Hair colouring", 120, "6500", category="Hair", masters=(_A,)),
    Service("manicure", "Manicure", 60, "1800", category="Nails", masters=(_M,)),
    Service("gel-polish", "Gel polish", 90, "2800", category="Nails", masters=(_M,)),
    Service("brow-shaping", "Brow shaping", 30, "900", category="Brows", masters=(_O, _M)),
)
ENTITIES = ("services", "masters", "day", "from_day", "at", "after", "before")


def load() -> tuple[date, list[dict[str, Any]]]:
    corpus = json.loads(CORPUS.read_text(encoding="utf-8"))
    return date.fromisoformat(corpus["today"]), corpus["requests"]


def entities(understood: Understood) -> dict[str, Any]:
    """What was understood, written as the corpus writes it."""
    when = understood.when
    names = {m.id: name for name, m in MASTERS.items()}
    found: dict[str, Any] = {
        "services": sorted(understood.services),
        "masters": sorted(names.get(m, str(m)) for m in understood.masters),
        "day": when.day.isoformat() if when.day else None,
        "from_day": when.from_day.isoformat() if when.from_day else None,
        "at": str(when.at) if when.at else None,
        "after": str(when.after) if when.after else None,
        "before": str(when.before) if when.before else None,
    }
    return {key: value for key, value in found.items() if value}


def expected(request: dict[str, Any]) -> dict[str, Any]:
    wanted = {key: request[key] for key in ENTITIES if key in request}
    for key in ("services", "masters"):
        if key in wanted:
            wanted[key] = sorted(wanted[key])
    return wanted


@dataclass
class Score:
    requests: int = 0
    intents_right: int = 0
    entities: int = 0  # entity fields expected or found
    entities_right: int = 0
    misses: list[str] = field(default_factory=list)

    @property
    def intents(self) -> float:
        return self.intents_right / self.requests if self.requests else 1.0

    @property
    def entity_share(self) -> float:
        return self.entities_right / self.entities if self.entities else 1.0


def score(requests: list[dict[str, Any]], today: date) -> Score:
    """Intents: the share of requests whose intent is right. Entities: of every entity field the
    corpus expects or the understanding found, the share that is right (a wrong extra one
    counts against it)."""
    result = Score()
    for request in requests:
        understood = understand(request["text"], DEMO_SERVICES, today)
        got, wanted = entities(understood), expected(request)
        result.requests += 1
        intent = understood.intent.value if understood.intent else None
        result.intents_right += intent == request["intent"]
        fields = set(got) | set(wanted)
        right = sum(got.get(key) == wanted.get(key) for key in fields)
        result.entities += len(fields)
        result.entities_right += right
        if intent != request["intent"] or right != len(fields):
            result.misses.append(f"{request['text']!r}: {intent} {got} (expected {wanted})")
    return result


def microseconds_per_message(requests: list[dict[str, Any]], today: date, rounds: int) -> float:
    texts = [request["text"] for request in requests]
    for text in texts:  # the catalogue's vocabulary is built once, as in the running bot
        understand(text, DEMO_SERVICES, today)
    started = time.perf_counter()
    for _ in range(rounds):
        for text in texts:
            understand(text, DEMO_SERVICES, today)
    return (time.perf_counter() - started) / (rounds * len(texts)) * 1e6


def main(rounds: int, show_misses: bool) -> int:
    today, requests = load()
    everything = score(requests, today)
    held_out = score([r for r in requests if r.get("held_out")], today)
    cost = microseconds_per_message(requests, today, rounds)
    if show_misses:
        for miss in everything.misses:
            print(f"miss: {miss}")
    print(
        f"{everything.requests} requests ({held_out.requests} held out): "
        f"intents {everything.intents:.1%}, entities {everything.entity_share:.1%}; "
        f"held out: intents {held_out.intents:.1%}, entities {held_out.entity_share:.1%}; "
        f"{cost:.0f} µs per message"
    )
    print(
        f"understanding: intents={everything.intents * 100:.1f} "
        f"entities={everything.entity_share * 100:.1f} "
        f"held_out_intents={held_out.intents * 100:.1f} us_per_message={cost:.0f}"
    )
    return 0
