"""Prometheus metrics at ``/metrics`` (docs/deploy.md, "Metrics").

What an on-call engineer watches: request latency by route group, SCIM requests by operation and status, SAML
logins by outcome and refusal reason, audit append latency (observed where they happen), and, read from the
database and Redis at each scrape: deprovisioning jobs by state and the age of the oldest not done, SIEM sink lag,
Celery queue depth. Labels are bounded sets (route groups, SCIM operations, refusal codes): never a workspace,
a person or a path.

``METRICS_TOKEN`` set: the endpoint wants ``Authorization: Bearer <token>`` (401 otherwise). Under gunicorn with
several workers set ``PROMETHEUS_MULTIPROC_DIR`` (an empty directory, cleared at start) so every worker's
counters are summed; without it each process reports its own.
"""

from __future__ import annotations

import hmac
import logging
import os
import re
import time
from collections.abc import Callable, Iterator

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import REGISTRY, Collector

logger = logging.getLogger("gatehouse.metrics")

METRICS_PATH = "/metrics"

REQUEST_SECONDS = Histogram(
    "gatehouse_http_request_duration_seconds", "Time to answer a request, by route group, method and status class.",
    ["route_group", "method", "status_class"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
SCIM_REQUESTS = Counter(
    "gatehouse_scim_requests", "SCIM requests by operation (method and resource) and HTTP status.",
    ["operation", "status"],
)
SAML_LOGINS = Counter(
    "gatehouse_saml_logins", "SAML logins by outcome (accepted, refused) and refusal reason (the ACS's codes).",
    ["outcome", "reason"],
)
AUDIT_APPEND_SECONDS = Histogram(
    "gatehouse_audit_append_duration_seconds", "Time to append one audit event (hash chain included).",
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1),
)

# Path prefix -> route group (the first that matches); anything else is "web".
_GROUPS = [
    ("/scim/", "scim"), ("/saml/", "saml"), ("/oauth/", "oauth"), ("/api/", "api"), ("/admin/", "admin"),
    ("/static/", "static"), ("/healthz", "probes"), ("/readyz", "probes"), (METRICS_PATH, "metrics"),
]
_SCIM_RESOURCES = {
    "users": "Users", "groups": "Groups", "schemas": "Schemas", "resourcetypes": "ResourceTypes",
    "serviceproviderconfig": "ServiceProviderConfig", "bulk": "Bulk", ".search": ".search",
}
_SCIM_PATH = re.compile(r"^/scim/v2/[^/]+/([^/?]*)(/[^?]*)?")
_METHODS = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}


def route_group(path: str) -> str:
    for prefix, group in _GROUPS:
        if path.startswith(prefix):
            return group
    return "web"


def scim_operation(method: str, path: str) -> str:
    """``GET Users``, ``PATCH Users/{id}``, ``GET Schemas/{id}``... (``other`` for an unknown resource)."""
    match = _SCIM_PATH.match(path)
    resource = _SCIM_RESOURCES.get((match.group(1) if match else "").lower(), "other")
    with_id = bool(match and match.group(2) and match.group(2).strip("/"))
    return f"{method if method in _METHODS else 'OTHER'} {resource}{'/{id}' if with_id else ''}"


def saml_login_counted(outcome: str, reason: str = "") -> None:
    """Count one SAML login (``reason``: the ACS's refusal code, a bounded set; empty when accepted)."""
    SAML_LOGINS.labels(outcome=outcome, reason=reason[:40]).inc()


# ----------------------------------------------------------------------------- gauges read at scrape time


class StateCollector(Collector):
    """Deprovisioning backlog, SIEM lag and Celery queue depth, read when scraped. A failing source is logged and
    left out of the answer; the scrape itself never fails."""

    def collect(self) -> Iterator[GaugeMetricFamily]:
        for read in (self._deprovisioning, self._siem, self._celery):
            try:
                yield from read()
            except Exception:  # noqa: BLE001 - a metric source down must not take the scrape down
                logger.warning("metrics: %s could not be read", read.__name__.strip("_"), exc_info=True)

    @staticmethod
    def _deprovisioning() -> Iterator[GaugeMetricFamily]:
        from django.apps import apps
        from django.db.models import Count, Min
        from django.utils import timezone

        Job = apps.get_model("workspaces", "DeprovisionJob")
        open_states = ["pending", "running", "failed"]
        # Only the jobs not done (the status index); done jobs are history and are not counted.
        counts = dict(Job.objects.filter(status__in=open_states).values_list("status").annotate(n=Count("pk")).order_by())
        jobs = GaugeMetricFamily("gatehouse_deprovision_jobs", "Deprovisioning jobs not done, by state.", labels=["state"])
        for state in open_states:
            jobs.add_metric([state], counts.get(state, 0))
        yield jobs
        oldest = Job.objects.filter(status__in=open_states).aggregate(oldest=Min("created_at"))["oldest"]
        yield GaugeMetricFamily(
            "gatehouse_deprovision_oldest_not_done_age_seconds",
            "Age of the oldest deprovisioning job not done: pending, running or failed (0: none).",
            value=(timezone.now() - oldest).total_seconds() if oldest else 0.0,
        )

    @staticmethod
    def _siem() -> Iterator[GaugeMetricFamily]:
        from django.apps import apps
        from django.utils import timezone

        Outbox = apps.get_model("audit", "AuditOutbox")
        Sink = apps.get_model("audit", "AuditSink")
        # At most SIEM_LAG_COUNT_CAP rows are counted: a scrape stays cheap however far behind a sink is.
        cap = settings.METRICS_SIEM_COUNT_CAP
        undelivered = Outbox.objects.all()[:cap].count()
        ages = []
        for sink_id in Sink.objects.values_list("pk", flat=True)[:1000]:
            first = Outbox.objects.filter(sink_id=sink_id).order_by("seq").values_list("created_at", flat=True).first()
            if first is not None:
                ages.append((timezone.now() - first).total_seconds())
        yield GaugeMetricFamily("gatehouse_siem_undelivered_events",
                                f"Audit events queued for SIEM sinks, all sinks (counted up to {cap}).", value=undelivered)
        yield GaugeMetricFamily("gatehouse_siem_oldest_undelivered_age_seconds",
                                "Age of the oldest event not yet delivered to a SIEM sink (0: none).",
                                value=max(ages, default=0.0))

    @staticmethod
    def _celery() -> Iterator[GaugeMetricFamily]:
        url = settings.CELERY_BROKER_URL
        if not url.startswith(("redis://", "rediss://")):
            return
        import redis

        client = redis.Redis.from_url(url, socket_connect_timeout=1.0, socket_timeout=1.0)
        try:
            depth = client.llen("celery")
        finally:
            client.close()
        yield GaugeMetricFamily("gatehouse_celery_queue_depth", "Tasks waiting in the Celery broker's default queue.",
                                value=depth)


def _registry() -> CollectorRegistry:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        MultiProcessCollector(registry)  # every worker's counters and histograms, summed
    else:
        registry = REGISTRY
    return registry


def exposition() -> bytes:
    """The metrics document, in Prometheus's text format."""
    registry = _registry()
    state = CollectorRegistry()
    state.register(StateCollector())
    return generate_latest(registry) + generate_latest(state)


def _authorised(request: HttpRequest) -> bool:
    token = settings.METRICS_TOKEN
    if not token:
        return True
    header = request.META.get("HTTP_AUTHORIZATION", "")
    scheme, _, presented = header.partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(presented.strip().encode(), token.encode())


class MetricsMiddleware:
    """First in MIDDLEWARE: answers ``/metrics`` (any Host, no session, no audit event) and times every request."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        path = request.path_info
        if path == METRICS_PATH:
            return self._metrics(request)
        started = time.perf_counter()
        response = self.get_response(request)
        elapsed = time.perf_counter() - started
        method = request.method if request.method in _METHODS else "OTHER"
        group = route_group(path)
        REQUEST_SECONDS.labels(route_group=group, method=method, status_class=f"{response.status_code // 100}xx").observe(elapsed)
        if group == "scim":
            SCIM_REQUESTS.labels(operation=scim_operation(method, path), status=str(response.status_code)).inc()
        return response

    @staticmethod
    def _metrics(request: HttpRequest) -> HttpResponse:
        if request.method not in ("GET", "HEAD"):
            response = HttpResponse("Use GET.\n", status=405, content_type="text/plain")
            response["Allow"] = "GET, HEAD"
            return response
        if not _authorised(request):
            response = HttpResponse("Send Authorization: Bearer <METRICS_TOKEN>.\n", status=401, content_type="text/plain")
            response["WWW-Authenticate"] = 'Bearer realm="metrics"'
            return response
        response = HttpResponse(exposition(), content_type=CONTENT_TYPE_LATEST)
        response["Cache-Control"] = "no-store"
        return response
