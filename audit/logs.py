"""Structured logs: one JSON object per line, carrying the request id the audit events of that request carry.

The id comes from the request context (``audit.middleware``; ``X-Request-ID`` when the caller sent a sane one) and
travels with every Celery task the request starts (a message header, restored before the task runs), so one id
joins a request's log lines, its audit events and the background work it caused. Credentials never reach a log
line whole: ``Authorization`` values, Gatehouse tokens and SAML messages are masked in the message and the
traceback as defence in depth (no code logs them on purpose).
"""

from __future__ import annotations

import json
import logging
import re
from datetime import UTC, datetime
from typing import Any

from .context import RequestContext, get_request_context, reset_request_context, set_request_context

REQUEST_ID_HEADER = "gatehouse_request_id"

_MASKS = [
    # Authorization header values: "Bearer <token>", "Basic <base64>".
    (re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{8,}"), r"\1 [masked]"),
    # Gatehouse SCIM tokens (gs_<id>_<secret>) and API keys (gh_<id>_<secret>).
    (re.compile(r"\bg[sh]_[A-Za-z0-9]+_[A-Za-z0-9_-]{8,}"), "[masked token]"),
    # A SAML message, form-encoded or in XML.
    (re.compile(r"(?i)(SAMLResponse|SAMLRequest)=[^&\s\"']+"), r"\1=[masked]"),
    (re.compile(r"(?s)<(\w+:)?(Response|Assertion|EncryptedAssertion)\b.*?</(\w+:)?\2>"), "[masked SAML]"),
    # The same names as keys of a dict or a JSON object ("'access_token': '...'", oauthlib's debug lines).
    (re.compile(r"""(?i)(['"](?:client_secret|refresh_token|access_token|id_token|password|secret|token)['"]\s*:\s*['"])[^'"]+"""),
     r"\1[masked]"),
    # client_secret / refresh_token / access_token / code / password in a query or form body.
    (re.compile(r"(?i)\b(client_secret|refresh_token|access_token|password|secret|token)=[^&\s\"']+"), r"\1=[masked]"),
]


def mask_secrets(text: str) -> str:
    """``text`` with every credential-shaped value replaced."""
    for pattern, replacement in _MASKS:
        text = pattern.sub(replacement, text)
    return text


class RequestIdFilter(logging.Filter):
    """Adds ``request_id`` (empty outside a request or a task a request started) to every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            # django.request logs a 4xx/5xx after the middleware has returned: its record carries the request.
            request = getattr(record, "request", None)
            record.request_id = getattr(request, "request_id", "") or get_request_context().request_id
        return True


# LogRecord's own attributes: anything else on a record came from ``extra=`` and is written as a field.
# django.request's ``request`` is left out: its text is the full path with the query string.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime", "request_id", "request"}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request_id, extra fields, exception."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": mask_secrets(record.getMessage()),
            "request_id": getattr(record, "request_id", ""),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = value if isinstance(value, int | float | bool | type(None)) else mask_secrets(str(value))
        if record.exc_info:
            entry["exception"] = mask_secrets(self.formatException(record.exc_info))
        return json.dumps(entry, ensure_ascii=False)


class MaskingFormatter(logging.Formatter):
    """The plain-text format (development) with the same masking."""

    def format(self, record: logging.LogRecord) -> str:
        return mask_secrets(super().format(record))


# ------------------------------------------------------------------ the request id across Celery


def add_request_id_header(headers: dict[str, Any] | None = None, **_: Any) -> None:
    """``before_task_publish``: the publishing request's id rides in the message's headers."""
    request_id = get_request_context().request_id
    if headers is not None and request_id:
        headers[REQUEST_ID_HEADER] = request_id


_task_tokens: dict[str, Any] = {}


def restore_request_id(task_id: str | None = None, task: Any = None, **_: Any) -> None:
    """``task_prerun``: the task runs in its request's id (its log lines and audit events carry it)."""
    request = getattr(task, "request", None)
    request_id = getattr(request, REQUEST_ID_HEADER, None) or (getattr(request, "headers", None) or {}).get(
        REQUEST_ID_HEADER
    )
    if request_id and task_id and not getattr(request, "is_eager", False):
        _task_tokens[task_id] = set_request_context(RequestContext(request_id=str(request_id)[:128]))


def forget_request_id(task_id: str | None = None, **_: Any) -> None:
    """``task_postrun``: the worker's next task starts from the empty context again."""
    token = _task_tokens.pop(task_id or "", None)
    if token is not None:
        reset_request_context(token)
