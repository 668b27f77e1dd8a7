"""Metrics of many salons under one set of names, with a bounded `salon` label."""

from __future__ import annotations

import re

from gateway.pipeline.metrics import Metrics
from gateway.pipeline.metrics_by_salon import OTHER, SalonLabels, render_by_salon, volume
from gateway.pipeline.resilience import State


def value(text: str, series: str) -> float:
    found = re.search(rf"^{re.escape(series)} (\S+)$", text, re.MULTILINE)
    assert found, f"{series} not in the page"
    return float(found.group(1))


def busy(queued: int, *, lag: float = 0.0, breaker: State = State.CLOSED) -> Metrics:
    metrics = Metrics()
    metrics.webhooks.labels("telegram", "queued").inc(queued)
    metrics.webhooks.labels("telegram", "unauthorized").inc(100)  # not volume: refused
    metrics.handling_seconds.labels("telegram").observe(0.003)
    metrics.queue_lag.labels("inbound").set(lag)
    metrics.queue_depth.labels("inbound").set(queued)
    metrics.breaker_changed("calcom", breaker)
    return metrics


def test_volume_counts_what_a_salon_queued() -> None:
    assert volume(busy(7)) == 7
    assert volume(Metrics()) == 0


def test_each_salon_gets_its_label_and_the_rest_are_merged_under_other() -> None:
    text = render_by_salon(
        [
            ("nord", busy(5)),
            ("sud", busy(3)),
            (OTHER, busy(2, lag=4.0, breaker=State.OPEN)),
            (OTHER, busy(1, lag=9.0)),
        ]
    ).decode()
    queued = 'frontdesk_webhooks_total{result="queued",salon="%s",source="telegram"}'
    assert value(text, queued % "nord") == 5
    assert value(text, queued % "sud") == 3
    # Counters, histograms and depths are summed; the lag and breaker state are the worst.
    assert value(text, queued % "other") == 3
    assert value(text, 'frontdesk_handling_seconds_count{salon="other",source="telegram"}') == 2
    assert value(text, 'frontdesk_queue_depth{queue="inbound",salon="other"}') == 3
    assert value(text, 'frontdesk_queue_lag_seconds{queue="inbound",salon="other"}') == 9
    assert value(text, 'frontdesk_breaker_state{salon="other",service="calcom"}') == 2
    assert value(text, 'frontdesk_dead_letters{salon="nord"}') == 0
    # One HELP and TYPE per name, whatever the number of salons.
    assert text.count("# TYPE frontdesk_webhooks_total counter") == 1
    assert text.count("# TYPE frontdesk_handling_seconds histogram") == 1
    assert "_created" not in text
    # Prometheus' text format wants a histogram's series together: each salon's buckets,
    # then its count and sum, before the next salon's.
    lines = [line for line in text.splitlines() if line.startswith("frontdesk_handling_seconds")]
    salons = [re.search(r'salon="(\w+)"', line).group(1) for line in lines]  # type: ignore[union-attr]
    assert salons == sorted(salons, key=["nord", "sud", "other"].index)


def test_the_busiest_salons_keep_their_label_and_do_not_swap_on_small_differences() -> None:
    labels = SalonLabels(2)
    assert labels.choose({"a": 0, "b": 0}) == {"a", "b"}  # room for every salon
    # More salons than labels: the busiest take them; no traffic takes none.
    assert labels.choose({"a": 10, "b": 0, "c": 4, "d": 0}) == {"a", "c"}
    # d is now busier than c, but not twice as busy: c keeps its label (no flapping).
    assert labels.choose({"a": 10, "b": 0, "c": 4, "d": 7}) == {"a", "c"}
    # Twice as busy: d takes the quietest label.
    assert labels.choose({"a": 10, "b": 0, "c": 4, "d": 9}) == {"a", "d"}
    # A salon no longer served frees its label for the busiest waiting one.
    assert labels.choose({"b": 1, "c": 4, "d": 9, "e": 0}) == {"c", "d"}
    none = SalonLabels(0)
    assert none.choose({"a": 100}) == set()
    shrunk = SalonLabels(3)
    shrunk.choose({"a": 5, "b": 1, "c": 3, "d": 0})
    shrunk.limit = 1
    assert shrunk.choose({"a": 5, "b": 1, "c": 3, "d": 0}) == {"a"}
