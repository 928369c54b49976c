"""Prometheus metrics of one server (prometheus-client), on their own registry so that tests can run several.

Requests by model and HTTP status; latency histograms for the time in the queue, in the runtime and in total;
batch sizes; requests in flight; model load time; open sequences; and device gauges read at scrape time where the
device exposes them (temperature, Raspberry Pi throttling flags), left out where it does not.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from edge_sdk.errors import MissingDependencyError

# Buckets in seconds from 100 us to 10 s: an int8 model on a Pi answers in ~1-50 ms.
LATENCY_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128)


def _prometheus() -> Any:
    try:
        import prometheus_client
    except ImportError as error:
        raise MissingDependencyError(f"prometheus-client not installed: {error}", fix="pip install 'edge-sdk[serve]'") from error
    return prometheus_client


class ServerMetrics:
    """Every metric the server exports."""

    def __init__(self, sequences: Callable[[], int] | None = None) -> None:
        prometheus = _prometheus()
        self.registry = prometheus.CollectorRegistry()
        registry = self.registry
        self.requests = prometheus.Counter("edge_sdk_requests", "Inference requests answered, by model and HTTP status", ["model", "status"], registry=registry)
        self.queue_seconds = prometheus.Histogram("edge_sdk_queue_seconds", "Time a request waited for a worker", ["model"], buckets=LATENCY_BUCKETS, registry=registry)
        self.inference_seconds = prometheus.Histogram("edge_sdk_inference_seconds", "Time of the runtime call(s) of one batch", ["model"], buckets=LATENCY_BUCKETS, registry=registry)
        self.request_seconds = prometheus.Histogram("edge_sdk_request_seconds", "Time from the request's arrival to its answer", ["model"], buckets=LATENCY_BUCKETS, registry=registry)
        self.batch_size = prometheus.Histogram("edge_sdk_batch_size", "Samples per runtime call", ["model"], buckets=BATCH_BUCKETS, registry=registry)
        self.in_flight = prometheus.Gauge("edge_sdk_requests_in_flight", "Requests received and not yet answered", ["model"], registry=registry)
        self.load_seconds = prometheus.Gauge("edge_sdk_model_load_seconds", "Time to load the served version of a model (all its workers)", ["model"], registry=registry)
        self.reloads = prometheus.Counter("edge_sdk_model_reloads", "Replaced artifacts, by outcome (swapped, rejected)", ["model", "outcome"], registry=registry)
        registry.register(_DeviceCollector(prometheus, sequences))

    def exposition(self) -> tuple[bytes, str]:
        """The text exposition and its content type."""
        prometheus = _prometheus()
        return prometheus.generate_latest(self.registry), prometheus.CONTENT_TYPE_LATEST


class _DeviceCollector:
    """Gauges read when /metrics is scraped: device temperature and throttling where readable, open sequences."""

    def __init__(self, prometheus: Any, sequences: Callable[[], int] | None) -> None:
        from prometheus_client.core import GaugeMetricFamily

        self._gauge = GaugeMetricFamily
        self._sequences = sequences

    def describe(self) -> list[Any]:
        return []  # read at scrape time: nothing to check at registration

    def collect(self) -> Iterator[Any]:
        from edge_sdk.device_info import temperature_c, throttled

        if self._sequences is not None:
            yield self._gauge("edge_sdk_sequences_open", "Open sequences of stateful models", value=self._sequences())
        temperature = temperature_c()
        if temperature is not None:
            yield self._gauge("edge_sdk_device_temperature_celsius", "SoC temperature (thermal_zone0)", value=temperature)
        flags = throttled()
        if flags is not None:
            yield self._gauge("edge_sdk_device_throttled", "Raspberry Pi `vcgencmd get_throttled` value (0 = never throttled)", value=int(flags["raw"], 16) if str(flags["raw"]).startswith("0x") else -1)
