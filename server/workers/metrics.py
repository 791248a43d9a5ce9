"""One /metrics for all workers.

Under --workers a scrape reaches whichever worker the kernel picks; if it showed that worker
alone, counters would jump between processes and rate() would be nonsense. So every worker's
/metrics answers for all of them: its own figures as of now, the others' as last pushed (every
PUSH_SECONDS), each series labelled `worker`, plus the supervisor's own (workers up, restarts).
"""

from __future__ import annotations

from collections.abc import Mapping

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector

PUSH_SECONDS = 2.0


class SupervisorMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.workers = Gauge(
            "citadel_workers_ready", "Worker processes ready to serve.", registry=self.registry
        )
        self.restarts = Counter(
            "citadel_worker_restarts", "Worker processes restarted after dying.", registry=self.registry
        )


def merge(expositions: Mapping[int, bytes], supervisor: CollectorRegistry) -> bytes:
    """Every worker's exposition (by index) as one, series labelled `worker`."""
    families: dict[str, Metric] = {}
    for index, text in sorted(expositions.items()):
        for family in text_string_to_metric_families(text.decode()):
            merged = families.get(family.name)
            if merged is None:
                merged = families[family.name] = Metric(
                    family.name, family.documentation, family.type, family.unit
                )
            for sample in family.samples:
                labels = {**sample.labels, "worker": str(index)}
                merged.add_sample(sample.name, labels, sample.value, sample.timestamp, sample.exemplar)
    registry = CollectorRegistry()
    registry.register(_Fixed(list(families.values())))
    return generate_latest(supervisor) + generate_latest(registry)


class _Fixed(Collector):
    def __init__(self, families: list[Metric]) -> None:
        self._families = families

    def collect(self):
        return self._families
