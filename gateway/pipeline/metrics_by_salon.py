"""`/metrics` of a gateway that serves many salons: every salon's own metrics (each salon has
its own `Metrics`) under one set of names, told apart by a `salon` label.

The label is bounded: Prometheus keeps one time series per distinct label set, so a label
with a value per salon multiplies every series by the number of salons, and thousands of
salons would make thousands of series of each histogram bucket. The busiest salons keep their
own label (`SalonLabels`), the rest are merged under `salon="other"`: counters, histograms and
depths summed, the lag and the breaker state as their highest (a sum of ages or of states says
nothing; the worst one is what an alert wants).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence

from prometheus_client import generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from gateway.pipeline.metrics import Metrics

OTHER = "other"
# Series merged by their highest value instead of their sum (see above).
_HIGHEST = frozenset({"frontdesk_queue_lag_seconds", "frontdesk_breaker_state"})
# A salon keeps its label until another one has received this many times its volume: without
# the margin, two salons of about the same volume would swap labels from scrape to scrape, and
# each swap reads to Prometheus as a counter reset in `other` (a false spike in `rate()`).
_DISPLACE = 2.0


def volume(metrics: Metrics) -> float:
    """How busy a salon is: the webhooks it queued since it was (re)built."""
    return sum(
        sample.value
        for family in metrics.webhooks.collect()
        for sample in family.samples
        if sample.labels.get("result") == "queued"
    )


class SalonLabels:
    """Which salons keep a label of their own: at most `limit`, the busiest, kept sticky."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.labelled: set[str] = set()

    def choose(self, volumes: Mapping[str, float]) -> set[str]:
        if len(volumes) <= self.limit:
            self.labelled = set(volumes)
            return set(self.labelled)
        labelled = {salon for salon in self.labelled if salon in volumes}
        while len(labelled) > self.limit:  # the limit was lowered: the quietest go first
            labelled.remove(min(labelled, key=lambda s: (volumes[s], s)))
        waiting = sorted((s for s in volumes if s not in labelled), key=lambda s: (-volumes[s], s))
        for salon in waiting:
            if volumes[salon] <= 0:
                break  # a salon with no traffic yet takes no free label (nor anyone's)
            if len(labelled) < self.limit:
                labelled.add(salon)
                continue
            quietest = min(labelled, key=lambda s: (volumes[s], s), default=None)
            if quietest is None or volumes[salon] <= _DISPLACE * volumes[quietest]:
                break  # the rest are quieter still
            labelled.remove(quietest)
            labelled.add(salon)
        self.labelled = labelled
        return set(labelled)


class _BySalon(Collector):
    def __init__(self, salons: Sequence[tuple[str, Metrics]]) -> None:
        self.salons = salons

    def collect(self) -> Iterator[Metric]:
        merged: dict[str, tuple[Metric, dict[tuple[str, tuple[tuple[str, str], ...]], float]]] = {}
        for label, metrics in self.salons:
            for family in metrics.registry.collect():
                if family.name not in merged:
                    copy = Metric(family.name, family.documentation, family.type, family.unit)
                    merged[family.name] = (copy, {})
                values = merged[family.name][1]
                highest = family.name in _HIGHEST
                for sample in family.samples:
                    labels = tuple(sorted({**sample.labels, "salon": label}.items()))
                    key = (sample.name, labels)
                    before = values.get(key)
                    if before is None:
                        values[key] = sample.value
                    elif highest:
                        values[key] = max(before, sample.value)
                    else:
                        values[key] = before + sample.value
        for family, values in merged.values():
            for (name, labels), value in values.items():
                family.add_sample(name, dict(labels), value)
            yield family


def render_by_salon(salons: Iterable[tuple[str, Metrics]]) -> bytes:
    """Prometheus text of every salon's metrics, each sample labelled with its `salon`; the
    salons given the same label (`other`) are merged into one series."""
    return generate_latest(_BySalon(list(salons)))
