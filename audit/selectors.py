"""Reads of the audit log, always scoped to one workspace: filters, keyset pages, exports."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any

from django import forms
from django.core import signing
from django.db.models import Q, QuerySet
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from .models import AuditEvent, AuditVerification

PAGE_SIZE = 50
MAX_PAGE_SIZE = 500


def recent_events(workspace: Any, *, limit: int = 50, target: tuple[str, Any] | None = None) -> QuerySet[AuditEvent]:
    qs = AuditEvent.objects.filter(workspace_id=workspace.pk)
    if target is not None:
        qs = qs.filter(target_type=target[0], target_id=str(target[1]))
    return qs.order_by("-created_at", "-id")[:limit]


# ----------------------------------------------------------------------------- filters


class FlexibleDateTimeField(forms.CharField):
    """A date (``2026-11-23``) or an ISO date-time; naive values are UTC."""

    def __init__(self, *, end_of_day: bool = False, **kwargs: Any) -> None:
        super().__init__(required=False, **kwargs)
        self.end_of_day = end_of_day

    def to_python(self, value: Any) -> datetime | None:  # type: ignore[override]  # a CharField parsed further
        value = (super().to_python(value) or "").strip()
        if not value:
            return None
        parsed: datetime | None = None
        if len(value) > 10:  # a bare date is handled below (whole days), not as midnight
            try:
                parsed = parse_datetime(value)
            except ValueError:
                parsed = None
        if parsed is None:
            try:
                day = datetime.strptime(value, "%Y-%m-%d").date()
            except ValueError as exc:
                raise forms.ValidationError("Use a date like 2026-11-23 or a date-time like 2026-11-23T14:00:00Z.") from exc
            parsed = datetime.combine(day, time.min)
            if self.end_of_day:
                # "to 2026-11-23" includes the whole day.
                parsed += timedelta(days=1)
        if timezone.is_naive(parsed):
            parsed = timezone.make_aware(parsed, UTC)
        return parsed


class AuditFilterForm(forms.Form):
    """The filters the audit page, the exports and the API share (one parser, one meaning)."""

    actor = forms.CharField(required=False, max_length=255, help_text="Email or label of who acted, or their id.")
    action = forms.CharField(
        required=False, max_length=64, help_text="An action (member.role_changed) or a family (member.*)."
    )
    target = forms.CharField(required=False, max_length=255, help_text="type:id (member:42) or a label.")
    auth_method = forms.CharField(
        required=False, max_length=32, help_text="password, saml, break_glass, scim_bearer, oauth, api_key ..."
    )
    ip = forms.CharField(required=False, max_length=64, label="IP", help_text="Exact address.")
    date_from = FlexibleDateTimeField(label="From", help_text="YYYY-MM-DD or a date-time, UTC.")
    date_to = FlexibleDateTimeField(label="To", end_of_day=True, help_text="A date is included whole.")
    q = forms.CharField(required=False, max_length=200, label="Text", help_text="Part of an action, actor or target.")

    # URL names (``from``/``to`` are Python keywords, so the form fields differ).
    PARAM_ALIASES = {"from": "date_from", "to": "date_to"}

    @classmethod
    def from_params(cls, params: Any) -> AuditFilterForm:
        data = {}
        for key in ("actor", "action", "target", "auth_method", "ip", "q", "date_from", "date_to", "from", "to"):
            value = params.get(key)
            if value not in (None, ""):
                data[cls.PARAM_ALIASES.get(key, key)] = value
        return cls(data)

    def active_filters(self) -> dict[str, str]:
        """The filters as given (for the export event and for links that keep them)."""
        out = {}
        for name, value in self.cleaned_data.items():
            if value in (None, ""):
                continue
            key = {"date_from": "from", "date_to": "to"}.get(name, name)
            out[key] = self.data.get(name, "") if name in ("date_from", "date_to") else value
        return out


def apply_filters(qs: QuerySet[AuditEvent], f: dict[str, Any]) -> QuerySet[AuditEvent]:
    """Each filter maps onto an index prefix where one exists (see migration 0004 and the benchmark)."""
    actor = (f.get("actor") or "").strip()
    if actor:
        qs = qs.filter(Q(actor_label=actor) | Q(actor_id=actor)) if actor.isdigit() else qs.filter(actor_label=actor)
    action = (f.get("action") or "").strip()
    if action:
        if action.endswith(".*") or "." not in action:
            qs = qs.filter(action__startswith=action.removesuffix(".*").rstrip(".") + ".")
        else:
            qs = qs.filter(action=action)
    target = (f.get("target") or "").strip()
    if target:
        kind, sep, ident = target.partition(":")
        if sep and kind and ident and " " not in kind:
            qs = qs.filter(target_type=kind, target_id=ident)
        else:
            qs = qs.filter(target_label=target)
    if f.get("auth_method"):
        qs = qs.filter(auth_method=f["auth_method"].strip())
    if f.get("ip"):
        qs = qs.filter(ip=f["ip"].strip())
    if f.get("date_from"):
        qs = qs.filter(created_at__gte=f["date_from"])
    if f.get("date_to"):
        qs = qs.filter(created_at__lt=f["date_to"])
    text = (f.get("q") or "").strip()
    if text:
        qs = qs.filter(
            Q(action__icontains=text) | Q(actor_label__icontains=text) | Q(target_label__icontains=text)
            | Q(target_id=text) | Q(request_id=text) | Q(ip=text)
        )
    return qs


def filtered_events(workspace: Any, filters: dict[str, Any]) -> QuerySet[AuditEvent]:
    """Newest first, scoped to ``workspace``."""
    return apply_filters(AuditEvent.objects.filter(workspace_id=workspace.pk), filters).order_by("-created_at", "-id")


def event_changes(event: AuditEvent) -> list[tuple[str, Any, Any]]:
    """A change event's ``before``/``after`` as (field, before, after) rows, fields in name order; [] when the
    event carries no such objects. One reading for the list's field table and the event page."""
    details = event.details if isinstance(event.details, dict) else {}
    before, after = details.get("before"), details.get("after")
    if not isinstance(before, dict) and not isinstance(after, dict):
        return []
    before = before if isinstance(before, dict) else {}
    after = after if isinstance(after, dict) else {}
    return [(k, before.get(k), after.get(k)) for k in sorted(set(before) | set(after))]


def recent_actor_labels(workspace: Any, *, scan: int = 500, limit: int = 30) -> list[str]:
    """Who acted lately in ``workspace`` (the actor filter's suggestions): distinct labels among the newest
    ``scan`` events, newest first. Bounded by the newest-first index, whatever the log's size."""
    labels = (
        AuditEvent.objects.filter(workspace_id=workspace.pk).exclude(actor_label="")
        .order_by("-created_at", "-id").values_list("actor_label", flat=True)[:scan]
    )
    return list(dict.fromkeys(labels))[:limit]


def latest_verification(workspace: Any) -> AuditVerification | None:
    """The chain verifier's last verdict for ``workspace`` (shown on its audit page)."""
    return AuditVerification.objects.filter(workspace_id=workspace.pk).order_by("-at", "-id").first()


def event_for_workspace(workspace: Any, event_id: int) -> AuditEvent | None:
    return AuditEvent.objects.filter(workspace_id=workspace.pk, pk=event_id).first()


# ----------------------------------------------------------------------------- keyset pages


class BadCursor(ValueError):
    """The cursor was altered, is from another workspace, or is malformed."""


def _signer(workspace: Any) -> signing.Signer:
    # Salted per workspace: a cursor minted in one workspace means nothing in another.
    return signing.Signer(salt=f"gatehouse.audit.cursor.{workspace.pk}")


def make_cursor(workspace: Any, event: AuditEvent) -> str:
    value = f"{event.created_at.isoformat(timespec='microseconds')}|{event.pk}"
    return _signer(workspace).sign_object(value, compress=False)


def read_cursor(workspace: Any, cursor: str) -> tuple[datetime, int]:
    try:
        value = _signer(workspace).unsign_object(cursor)
        stamp, _, pk = value.partition("|")
        created_at = datetime.fromisoformat(stamp)
        return created_at, int(pk)
    except (signing.BadSignature, ValueError, TypeError, AttributeError) as exc:
        raise BadCursor("This page link is invalid or expired. Start again from the first page.") from exc


@dataclass
class Page:
    events: list[AuditEvent]
    next_cursor: str


def events_page(workspace: Any, qs: QuerySet[AuditEvent], *, cursor: str = "", limit: int = PAGE_SIZE) -> Page:
    """One page, newest first, after ``cursor`` (exclusive) on (created_at, id).

    Keyset, not OFFSET: page 1,000 costs what page 1 costs, and events that arrive while someone
    pages (they are newer, so they sort before the cursor) never shift or repeat later pages.
    The ``created_at <= t`` half is the index range; the OR only settles ties on ``t``.
    """
    limit = max(1, min(limit, MAX_PAGE_SIZE))
    if cursor:
        created_at, pk = read_cursor(workspace, cursor)
        qs = qs.filter(created_at__lte=created_at).filter(Q(created_at__lt=created_at) | Q(pk__lt=pk))
    rows = list(qs[: limit + 1])
    more = len(rows) > limit
    rows = rows[:limit]
    return Page(rows, make_cursor(workspace, rows[-1]) if more and rows else "")


def events_after_seq(workspace: Any, qs: QuerySet[AuditEvent], *, after_seq: int, limit: int) -> list[AuditEvent]:
    """Oldest first by chain position: the gapless order a SIEM pull wants (seq follows commit order)."""
    limit = max(1, min(limit, MAX_PAGE_SIZE))
    return list(qs.filter(seq__gt=after_seq).order_by("seq")[:limit])


# ----------------------------------------------------------------------------- serialisation


_STORED = object()


def event_as_dict(event: AuditEvent, details: Any = _STORED) -> dict[str, Any]:
    """The public shape of an event (API, JSON Lines export, SIEM sinks). ``details``: the event's details when the
    caller already decoded them (the export reads them as JSON text), instead of ``event.details``."""
    return {
        "id": event.pk,
        "seq": event.seq,
        "created_at": event.created_at.isoformat().replace("+00:00", "Z"),
        "workspace_id": event.workspace_id,
        "action": event.action,
        "actor": {
            "kind": event.actor_kind, "id": event.actor_id, "label": event.actor_label,
            "auth_method": event.auth_method,
        },
        "target": {"type": event.target_type, "id": event.target_id, "label": event.target_label},
        "ip": event.ip,
        "user_agent": event.user_agent,
        "request_id": event.request_id,
        "details": event.details if details is _STORED else details,
        "prev_hash": event.prev_hash,
        "hash": event.hash,
    }


CSV_COLUMNS = [
    "id", "seq", "created_at", "action", "actor_kind", "actor_id", "actor_label", "auth_method",
    "target_type", "target_id", "target_label", "ip", "user_agent", "request_id", "details", "prev_hash", "hash",
]

