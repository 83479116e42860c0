"""Prometheus metrics for the proxy, on a registry of its own (served at /metrics)."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from shadowtap.proxy.dialects import endpoint_for_path
from shadowtap.proxy.exchange import RawExchange

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
_OVERHEAD_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1)


class ProxyMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        # Labelled by endpoint kind, never by raw path: clients choose paths, and every label value
        # is a new series held in memory for the life of the process.
        self.requests = Counter("shadowtap_requests_total", "Requests relayed, by endpoint and status.",
                                ["endpoint", "status"], registry=r)
        self.upstream_latency = Histogram("shadowtap_upstream_latency_seconds",
                                          "Request received to last byte relayed.", ["endpoint"],
                                          buckets=_LATENCY_BUCKETS, registry=r)
        self.overhead = Histogram("shadowtap_proxy_overhead_seconds",
                                  "Time the proxy spends before forwarding and before relaying headers.",
                                  buckets=_OVERHEAD_BUCKETS, registry=r)
        self.client_disconnects = Counter("shadowtap_client_disconnects_total",
                                          "Clients that left before the response completed.", registry=r)
        self.upstream_broken = Counter("shadowtap_upstream_broken_total",
                                       "Primary responses that broke off mid-body.", registry=r)
        self.body_too_large = Counter("shadowtap_request_body_too_large_total",
                                      "Requests refused with 413.", registry=r)
        self.path_refused = Counter("shadowtap_request_path_refused_total",
                                    "Requests refused with 400 for a path that could leave the primary's "
                                    "base path.", registry=r)
        # Not labelled by method: under some HTTP parsers a client may invent any method name.
        self.method_refused = Counter("shadowtap_request_method_refused_total",
                                      "Requests refused with 405 for a method the endpoint's API does not use.",
                                      registry=r)
        self.unauthorized = Counter("shadowtap_unauthorized_total",
                                    "Requests refused with 401 for a missing or wrong proxy key.", registry=r)
        self.capture_enqueued = Counter("shadowtap_capture_enqueued_total",
                                        "Exchanges handed to the capture writer.", registry=r)
        self.capture_dropped = Counter("shadowtap_capture_dropped_total",
                                       "Exchanges not captured, by reason.", ["reason"], registry=r)
        self.capture_written = Counter("shadowtap_capture_written_total",
                                       "Exchanges written to the store.", registry=r)
        self.capture_write_errors = Counter("shadowtap_capture_write_errors_total",
                                            "Failed attempts to write a batch to the store.", registry=r)
        self.capture_queue_depth = Gauge("shadowtap_capture_queue_depth",
                                         "Exchanges waiting for the capture writer.", registry=r)
        self.feedback_received = Counter("shadowtap_feedback_received_total",
                                         "Feedback items accepted by POST /shadowtap/feedback, by outcome and "
                                         "result (created, or unchanged for a repeat).", ["outcome", "result"],
                                         registry=r)
        self.canary_served = Counter("shadowtap_canary_served_total",
                                     "Live requests a canary candidate answered, by candidate.", ["candidate"],
                                     registry=r)
        self.canary_fallbacks = Counter("shadowtap_canary_fallbacks_total",
                                        "Canaried requests the primary answered instead, by candidate and reason "
                                        "(contract_invalid, candidate_error, candidate_timeout, state_stale, "
                                        "canary_error).", ["candidate", "reason"], registry=r)
        # The labelled children the live path touches per request, looked up once each: `labels()`
        # takes a lock and builds a key every call (about 1.7 µs, twice per request).
        self._request_counters: dict[tuple[str, int], Counter] = {}
        self._latency_histograms: dict[str, Histogram] = {}

    def track_queue_depth(self, depth: Callable[[], int]) -> None:
        self.capture_queue_depth.set_function(depth)

    def observe_exchange(self, exchange: RawExchange) -> None:
        endpoint = endpoint_for_path(exchange.path)
        self._requests_counter(endpoint, exchange.status).inc()
        latency = self._latency_histograms.get(endpoint)
        if latency is None:
            latency = self._latency_histograms[endpoint] = self.upstream_latency.labels(endpoint)
        latency.observe(exchange.t_end - exchange.t_start)
        if exchange.t_upstream_start and exchange.t_response_started:
            before = exchange.t_upstream_start - exchange.t_start
            relaying_headers = exchange.t_response_started - exchange.t_upstream_headers
            self.overhead.observe(before + relaying_headers)
        if exchange.client_disconnected:
            self.client_disconnects.inc()

    def observe_refused(self, exchange: RawExchange) -> None:
        """A request the proxy answered itself before reading it all (400, 405, 408, 413): counted, not timed."""
        self._requests_counter(endpoint_for_path(exchange.path), exchange.status).inc()

    def _requests_counter(self, endpoint: str, status: int) -> Counter:
        # Keyed by the status as received (no str() per request); those outside 100-599 share "other".
        counter = self._request_counters.get((endpoint, status))
        if counter is None:
            counter = self.requests.labels(endpoint, _status_label(status))
            if len(self._request_counters) < 10_000:  # statuses are the upstream's: keep the cache bounded too
                self._request_counters[(endpoint, status)] = counter
        return counter

    def render(self) -> bytes:
        return generate_latest(self.registry)


def _status_label(status: int) -> str:
    # Statuses come from the upstream; keep them to the HTTP range so the label set stays bounded.
    return str(status) if 100 <= status <= 599 else "other"
