"""A flood at one salon does not hold up another's replies (issue 18: 5,000 queued messages
for salon A do not delay salon B's reply beyond its usual latency)."""

from __future__ import annotations

from bench.fairness import measure


async def test_a_backlog_at_one_salon_does_not_hold_up_anothers_replies(redis_url: str) -> None:
    figures = await measure(redis_url, backlog=5000, samples=3)
    # Ordering, robust however loaded the machine: every reply of B's came while most of A's
    # backlog was still waiting (in one shared queue B would have waited for all of it).
    assert figures.answered_meanwhile < figures.backlog / 2, figures.summary()
    # And a bound: B's reply stays within seconds, however large A's backlog (measured on
    # two shared cores: about 13 ms idle, under 200 ms behind A's backlog).
    assert max(figures.backlog_ms) < 5000, figures.summary()
