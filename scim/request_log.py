"""The provisioning request log: what the provisioning page shows of recent SCIM requests.

``log_scim_request`` is called by ``scim.hooks.after_scim_request`` once per SCIM request.
Never stored: headers (Authorization!), bodies, attribute values, passwords. Stored: method,
path with the query string (``access_token`` parameters redacted), status, the SCIM error's
``detail``/``scimType`` (redacted again, in case a message quoted a secret), the attribute
names and PATCH operations the request touched, request id, client IP and duration.

Cost on the request: one INSERT (on PostgreSQL a prepared statement that does not wait for the WAL
flush, see ``_insert``); every ``PRUNE_EVERY``-th row (by id) also prunes the
workspace to its newest ``SCIM_REQUEST_LOG_KEEP`` rows and drops rows older than
``SCIM_REQUEST_LOG_MAX_AGE_DAYS``, through the ``(workspace, -id)`` index.
A failure to log is logged and never breaks the SCIM response.
"""

from __future__ import annotations

import json
import logging
import re
import time
from datetime import timedelta
from typing import Any
from urllib.parse import unquote_plus

from django.conf import settings
from django.db import connections, router
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.utils import timezone

from audit.middleware import client_ip
from config.db import CompiledQuery, is_postgresql
from workspaces.models import Workspace

from .models import ScimRequestLog

log = logging.getLogger(__name__)

# Pruning reads past a workspace's newest rows (and the dead rows the pruning itself leaves until VACUUM):
# 10-25 ms on a busy log. Every 50th row that cost 0.3-0.5 ms per request, a fifth of a SCIM read;
# every 500th, about 0.05 ms. A workspace's log holds at most about KEEP + 500 rows between prunes.
PRUNE_EVERY = 500
_MAX_BODY_TO_SUMMARISE = 64 * 1024
_SECRET_PATTERNS = [
    re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]+"),
    re.compile(r"\bg[sh]_[A-Za-z0-9_-]{6,}"),
    re.compile(r"(?i)((?:access_token|refresh_token|client_secret|password|secret|token)=)[^&\s]*"),
    re.compile(r'(?i)("(?:password|secret|token|client_secret|access_token)"\s*:\s*)"[^"]*"'),
]


def redact(text: str) -> str:
    """Remove anything that looks like a credential from a string meant for people."""
    text = _SECRET_PATTERNS[0].sub(lambda m: f"{m.group(1)} [redacted]", text)
    text = _SECRET_PATTERNS[1].sub("[redacted]", text)
    text = _SECRET_PATTERNS[2].sub(lambda m: f"{m.group(1)}[redacted]", text)
    return _SECRET_PATTERNS[3].sub(lambda m: f'{m.group(1)}"[redacted]"', text)


def _error_fields(response: HttpResponse) -> tuple[str, str]:
    if response.status_code < 400 or getattr(response, "streaming", False):
        return "", ""
    try:
        content = response.content
        if len(content) > _MAX_BODY_TO_SUMMARISE:
            return "", ""
        body = json.loads(content or b"{}")
    except (ValueError, UnicodeDecodeError):
        return "", ""
    if not isinstance(body, dict):
        return "", ""
    detail = body.get("detail") or body.get("error_description") or ""
    return redact(str(detail))[:500], str(body.get("scimType") or "")[:32]


def _summary(request: HttpRequest) -> str:
    """Names only: which attributes a POST/PUT carried, which PATCH operations and paths."""
    if request.method not in ("POST", "PUT", "PATCH"):
        return ""
    try:
        raw = request.body
    except Exception:  # noqa: BLE001 - body already consumed as a stream, or too large
        return ""
    if not raw or len(raw) > _MAX_BODY_TO_SUMMARISE:
        return "(large body)" if raw else ""
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return "(not JSON)"
    if not isinstance(body, dict):
        return ""
    if request.method == "PATCH" and isinstance(body.get("Operations"), list):
        parts = []
        for op in body["Operations"][:20]:
            if not isinstance(op, dict):
                continue
            name = str(op.get("op", "?"))[:10]
            path = op.get("path")
            if path:
                parts.append(f"{name} {str(path)[:60]}")
            elif isinstance(op.get("value"), dict):
                parts.append(f"{name} {','.join(sorted(str(k)[:40] for k in op['value']))}")
            else:
                parts.append(name)
        return redact("; ".join(parts))[:255]
    keys = sorted(str(k)[:60] for k in body if k not in ("schemas", "password"))
    return ("attributes: " + ", ".join(keys))[:255]


def _with_ignored(summary: str) -> str:
    """The attributes the request carried that Gatehouse ignored (names only; first, so they survive the cut),
    then the summary."""
    from .protocol.documents import ignored_attributes

    ignored = ignored_attributes()
    if not ignored:
        return summary
    tail = "ignored: " + ", ".join(ignored)
    return redact(f"{tail}; {summary}" if summary else tail)[:255]


def _printable(text: str) -> str:
    """What the page shows of caller-sent text: U+0000 (which PostgreSQL text cannot hold, so the row would be
    lost) as U+FFFD."""
    return text.replace("\x00", "\ufffd")


def _path(request: HttpRequest) -> str:
    # Decoded, so an Owner reads `filter=userName eq "jane@x.test"` as Okta sent it.
    query = unquote_plus(request.META.get("QUERY_STRING", ""))
    return redact(request.path + (f"?{query}" if query else ""))[:512]


def log_scim_request(
    request: HttpRequest, slug: str, principal: Any, response: HttpResponse, *, duration_ms: int | None = None,
) -> ScimRequestLog | None:
    """Record one SCIM request for the provisioning page. Never raises.

    ``principal`` is a ``ScimPrincipal`` or None (authentication failed). Duration: the
    ``duration_ms`` argument, else ``request.scim_started_at`` (a ``time.monotonic()`` value).
    """
    try:
        if principal is not None:
            workspace_id = principal.workspace.pk
            credential = principal.credential
            auth_method = principal.auth_method
        else:
            workspace_id = Workspace.objects.filter(slug=slug).values_list("pk", flat=True).first()
            credential, auth_method = None, ""
            if workspace_id is None:
                return None  # no such workspace: nobody's log to write to
        started = getattr(request, "scim_started_at", None)
        if duration_ms is None and isinstance(started, float):
            duration_ms = max(0, int((time.monotonic() - started) * 1000))
        detail, scim_type = _error_fields(response)
        entry = ScimRequestLog(
            workspace_id=workspace_id, credential=credential, auth_method=auth_method,
            method=_printable((request.method or "")[:8]), path=_printable(_path(request)), status=response.status_code,
            scim_type=_printable(scim_type), error_detail=_printable(detail),
            summary=_printable(_with_ignored(_summary(request))),
            request_id=_printable(str(getattr(request, "request_id", "") or "")[:128]), ip=client_ip(request),
            duration_ms=duration_ms, created_at=timezone.now(),
        )
        _insert(entry)
        if entry.pk % PRUNE_EVERY == 0:
            prune_request_log(workspace_id)
        return entry
    except Exception:  # noqa: BLE001 - the log is for humans; the SCIM response matters more
        log.exception("Could not write the SCIM request log")
        return None


_COLUMNS = ("workspace_id", "credential_id", "auth_method", "method", "path", "status", "scim_type",
            "error_detail", "summary", "request_id", "ip", "duration_ms", "created_at")


def _insert(entry: ScimRequestLog) -> None:
    """Write one row. On PostgreSQL outside a transaction: one prepared statement whose own commit
    does not wait for the WAL flush (``synchronous_commit`` off for that statement's transaction only).
    Every row is still written; only a crash of PostgreSQL itself in the next ~0.6 s could lose it,
    which is acceptable for a troubleshooting log (the audit log, not this, is the record of changes).
    Elsewhere (SQLite, or inside a caller's transaction, whose commit we must not weaken): the ORM."""
    connection = connections[router.db_for_write(ScimRequestLog)]
    if not is_postgresql(connection) or connection.in_atomic_block:
        entry.save(force_insert=True)
        return
    values = [getattr(entry, column) for column in _COLUMNS]
    row = _INSERT.fetchone(values, conn=connection)
    assert row is not None  # INSERT ... RETURNING returns its row
    entry.pk = row[0]
    entry._state.adding = False
    entry._state.db = connection.alias


def _insert_sql(connection: BaseDatabaseWrapper) -> str:
    qn = connection.ops.quote_name
    columns = ", ".join(qn(c) for c in _COLUMNS)
    placeholders = ", ".join(["%s"] * len(_COLUMNS))
    return (
        f"INSERT INTO {qn(ScimRequestLog._meta.db_table)} ({columns}) SELECT {placeholders} "
        f"WHERE set_config('synchronous_commit', 'off', true) IS NOT NULL RETURNING {qn('id')}"
    )


_INSERT = CompiledQuery(_insert_sql, prepare=True)


def prune_request_log(workspace_id: int) -> int:
    """Keep a workspace's newest ``SCIM_REQUEST_LOG_KEEP`` authenticated rows and, in a budget of their own,
    its newest ``SCIM_REQUEST_LOG_UNAUTHENTICATED_KEEP`` rows of requests that failed authentication; none
    older than the max age. Separate budgets: a stranger's junk requests never push the IdP's history out."""
    rows = ScimRequestLog.objects.filter(workspace_id=workspace_id)
    deleted = 0
    for subset, keep in (
        (rows.exclude(auth_method=""), settings.SCIM_REQUEST_LOG_KEEP),
        (rows.filter(auth_method=""), settings.SCIM_REQUEST_LOG_UNAUTHENTICATED_KEEP),
    ):
        cutoff = list(subset.order_by("-id").values_list("id", flat=True)[keep:keep + 1])
        if cutoff:
            deleted += subset.filter(id__lte=cutoff[0]).delete()[0]
    too_old = timezone.now() - timedelta(days=settings.SCIM_REQUEST_LOG_MAX_AGE_DAYS)
    deleted += rows.filter(created_at__lt=too_old).delete()[0]
    return deleted


def recent_requests(workspace: Workspace, limit: int = 50) -> QuerySet[ScimRequestLog]:
    """The provisioning page's log, newest first, with the credential's name (one query)."""
    return ScimRequestLog.objects.filter(workspace=workspace).select_related("credential").order_by("-id")[:limit]


REQUEST_LOG_PAGE = 50


def request_log_page(
    workspace: Workspace, filters: dict[str, str], *, before: int | None = None, limit: int = REQUEST_LOG_PAGE
) -> tuple[list[ScimRequestLog], int | None]:
    """One page of the workspace's request log, newest first, older than the row ``before`` (keyset on id, the
    log's own index); and the id to continue from, None on the last page.

    ``filters`` (``RequestLogFilterForm``): ``outcome`` ok | failed | unauthenticated, ``method``, ``status``
    (an exact code), ``path`` (part of the path, e.g. a member id or ``Groups``).
    """
    qs = ScimRequestLog.objects.filter(workspace=workspace).select_related("credential").order_by("-id")
    outcome = filters.get("outcome")
    if outcome == "ok":
        qs = qs.filter(status__lt=400)
    elif outcome == "failed":
        qs = qs.filter(status__gte=400)
    elif outcome == "unauthenticated":
        qs = qs.filter(status=401)
    if filters.get("method"):
        qs = qs.filter(method=filters["method"])
    if filters.get("status"):
        qs = qs.filter(status=int(filters["status"]))
    if filters.get("path"):
        qs = qs.filter(path__icontains=filters["path"])
    if before is not None:
        qs = qs.filter(pk__lt=before)
    rows = list(qs[: limit + 1])
    return rows[:limit], (rows[limit - 1].pk if len(rows) > limit else None)
