"""Per-request context (IP, user agent, request id) captured once and read by the audit writer.

Kept in a ContextVar so service functions never need the request object, and so Celery tasks
(which have no request) record the empty context instead of a stale one.
"""

from __future__ import annotations

import contextvars
from dataclasses import dataclass


@dataclass(frozen=True)
class RequestContext:
    ip: str = ""
    user_agent: str = ""
    request_id: str = ""


_EMPTY = RequestContext()
_current: contextvars.ContextVar[RequestContext | None] = contextvars.ContextVar("gatehouse_request_context", default=None)


def get_request_context() -> RequestContext:
    return _current.get() or _EMPTY


def set_request_context(ctx: RequestContext) -> contextvars.Token:
    return _current.set(ctx)


def reset_request_context(token: contextvars.Token) -> None:
    _current.reset(token)
