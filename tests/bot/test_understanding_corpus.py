"""The corpus of real-style requests (tests/data/understanding_corpus.json), scored.

Thresholds: 95 % of intents and 90 % of entity fields over the whole corpus (the issue's aim),
and 90 % / 85 % on the held-out part, which was written apart and never tuned on: a few points
lower, since a held-out miss is what a new client's wording costs us and 30 requests move by
3 points a miss. `python -m bench understanding --misses` lists what is missed.
"""

from __future__ import annotations

from bench.understanding import load, score


def test_the_corpus_is_half_russian_half_english_and_big_enough() -> None:
    _, requests = load()
    russian = [r for r in requests if any("а" <= c <= "я" for c in r["text"].lower())]
    assert len(requests) >= 150
    assert 0.4 <= len(russian) / len(requests) <= 0.6
    assert sum(1 for r in requests if r.get("held_out")) >= 30


def test_intents_and_entities_are_understood_on_the_whole_corpus() -> None:
    today, requests = load()
    result = score(requests, today)
    assert result.intents >= 0.95, result.misses
    assert result.entity_share >= 0.90, result.misses


def test_the_held_out_requests_are_understood_too() -> None:
    today, requests = load()
    result = score([r for r in requests if r.get("held_out")], today)
    assert result.intents >= 0.90, result.misses
    assert result.entity_share >= 0.85, result.misses
