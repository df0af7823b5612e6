"""API key authentication: one DRF class, the only credential the connector API accepts.

A key resolves to exactly one workspace, once, up front (the tenant comes from the key's own
row, never from the caller): a valid key of workspace A on workspace B's URL is a plain 401.
Keys are ``gh_<prefix>_<secret>``; the row is found by its prefix and the whole key's SHA-256
is compared in constant time. Refused at once: revoked or expired keys, keys of a deactivated
member or a disabled account, and keys issued before the member's credentials were revoked (401,
all alike). In a workspace that enforces SAML-only, a personal key whose member has not signed in
through the workspace's IdP within its window is refused with 403 and what to do about it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import Model
from django.http import HttpRequest
from django.utils import timezone
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication
from rest_framework.request import Request

from audit.record import Actor
from config.db import CompiledQuery, column_converters, default_connection, is_postgresql, process_cache
from workspaces.credentials import (
    authorization,
    challenge,
    record_use,
    secret_matches,
    split_token,
)
from workspaces.models import ApiKey, Membership, User, Workspace
from workspaces.package_access import UNREAD, DecisionRow, Unread, decision_sql
from workspaces.policy import personal_key_sso_problem
from workspaces.services import API_KEY_PREFIX, actor_for_membership, api_key_sso_refusal_record

AUTH_METHOD = "api_key"
REALM = "gatehouse-api"
_REFUSED = "Invalid, expired or revoked API key."


@dataclass(frozen=True)
class ApiPrincipal:
    """``request.auth`` for every API view: the key, its one workspace and (personal keys) its member."""

    api_key: ApiKey
    workspace: Workspace
    membership: Membership | None
    # The access check's decision row, read with the key when the caller named the repository
    # (``resolve_api_key(..., repository=)``): for ``decision_repository`` only.
    decision_row: DecisionRow | Unread = UNREAD
    decision_repository: str | None = None

    @property
    def is_service_key(self) -> bool:
        return self.membership is None

    def has_scope(self, scope: str) -> bool:
        """Service keys hold exactly their scopes; a personal key's scopes, if any, only narrow its role."""
        scopes = self.api_key.scopes or []
        if self.is_service_key:
            return scope in scopes
        return not scopes or scope in scopes

    @property
    def actor(self) -> Actor:
        if self.membership is not None:
            return actor_for_membership(self.membership, AUTH_METHOD)
        key = self.api_key
        return Actor(kind="api_key", id=str(key.pk), label=f"service key {key.name} ({key.prefix})", auth_method=AUTH_METHOD)


class ServiceKeyUser:
    """``request.user`` for a workspace service key: authenticated, but no person and no Django rights."""

    is_authenticated = True
    is_anonymous = False
    is_active = True
    is_staff = False
    is_superuser = False
    pk = id = None

    def __init__(self, api_key: ApiKey) -> None:
        self.api_key = api_key

    def __str__(self) -> str:
        return f"service key {self.api_key.prefix}"


def key_from_request(request: Request | HttpRequest) -> str | None:
    """The presented key: ``Authorization: Bearer <key>`` or ``X-Api-Key: <key>``. None when neither is sent."""
    header = request.META.get("HTTP_AUTHORIZATION", "")
    if header:
        scheme, value = authorization(header)
        if scheme == "bearer":
            return value
    api_key = request.META.get("HTTP_X_API_KEY")
    if api_key is not None:
        return api_key.strip()
    return None


def split_key(raw: str) -> str:
    """``gh_<prefix>_<secret>`` -> prefix, or "" for anything else."""
    return split_token(raw, API_KEY_PREFIX, max_id_length=16).public_id


# The key row with its workspace, member and account in one statement, built once per process and database.
#
# Every API request runs this. Compiling the equivalent ``select_related("workspace", "membership__user")``
# query took about 1.5 ms of CPU per request here, four times the cost of running it (bench/api_bench.py),
# so the SQL is written from the models' metadata and the rows go through the ORM's own converters and
# ``Model.from_db``: the instances are the ones the ORM would have built. Prepared once per connection on
# PostgreSQL: planning the four-table join cost three times its execution (config.db).
#
# ``_LOOKUP_WITH_DECISION`` (PostgreSQL): the access check's decision row (``package_access.decision_sql`` for
# the key's member and a named repository) is joined in LATERAL, so the check reads the key and its
# decision's inputs in one round trip instead of two.
_PARTS: list[tuple[Any, str]] = [(ApiKey, "k"), (Workspace, "w"), (Membership, "m"), (User, "u")]
# Per model (typed Any: from_db builds ApiKey, Workspace, Membership and User rows in turn): its field
# names and its columns' slice of the row.
_LAYOUT: list[tuple[Any, list[str], int, int]] = []
_EXPRESSIONS: list[Any] = []
for _model, _alias in _PARTS:
    _fields = _model._meta.concrete_fields
    _LAYOUT.append((_model, [f.attname for f in _fields], len(_EXPRESSIONS), len(_EXPRESSIONS) + len(_fields)))
    _EXPRESSIONS.extend(f.get_col(_alias) for f in _fields)
_DECISION_AT = len(_EXPRESSIONS)
# The database's and the fields' converters (JSON, datetimes on SQLite...) per database alias: they depend
# on the alias's settings only, so one set serves every thread's connection of the alias.
_converters: dict[str, list[tuple[int, Any]]] = process_cache()


def _lookup_sql(conn: BaseDatabaseWrapper, with_decision: bool) -> str:
    qn = conn.ops.quote_name

    def fk(model: type[Model], name: str) -> str:
        return qn(model._meta.get_field(name).column)  # type: ignore[union-attr,arg-type]  # a concrete foreign key

    columns = [f"{alias}.{qn(f.column)}" for model, alias in _PARTS for f in model._meta.concrete_fields]
    decision = ""
    if with_decision:
        columns.append("d.*")
        inner = decision_sql(member=f"m.{qn('id')}", workspace=f"k.{fk(ApiKey, 'workspace')}", name="%s")
        decision = f"LEFT OUTER JOIN LATERAL ({inner}) d ON TRUE "
    return (
        f"SELECT {', '.join(columns)} FROM {qn(ApiKey._meta.db_table)} k "
        f"INNER JOIN {qn(Workspace._meta.db_table)} w ON w.{qn('id')} = k.{fk(ApiKey, 'workspace')} "
        f"LEFT OUTER JOIN {qn(Membership._meta.db_table)} m ON m.{qn('id')} = k.{fk(ApiKey, 'membership')} "
        f"LEFT OUTER JOIN {qn(User._meta.db_table)} u ON u.{qn('id')} = m.{fk(Membership, 'user')} "
        f"{decision}WHERE k.{qn('prefix')} = %s"
    )


_LOOKUP = CompiledQuery(lambda conn: _lookup_sql(conn, False), prepare=True)
_LOOKUP_WITH_DECISION = CompiledQuery(lambda conn: _lookup_sql(conn, True), prepare=True)


def _fetch_key(
    conn: BaseDatabaseWrapper, prefix: str, repository: str | None = None
) -> tuple[ApiKey | None, DecisionRow]:
    """The key (None: no such prefix) and, with ``repository``, the decision row for it."""
    if repository is None:
        row = _LOOKUP.fetchone([prefix], conn=conn)
    else:
        row = _LOOKUP_WITH_DECISION.fetchone([repository, prefix], conn=conn)
    if row is None:
        return None, None
    converters = _converters.get(conn.alias)
    if converters is None:
        converters = _converters[conn.alias] = column_converters(conn, _EXPRESSIONS)
    values = list(row)
    for position, (functions, expression) in converters:
        for convert in functions:
            values[position] = convert(values[position], expression, conn)
    key, workspace, membership, user = (
        model.from_db(conn.alias, names, values[start:end]) for model, names, start, end in _LAYOUT
    )
    key.workspace = workspace
    if membership.pk is None:
        key.membership = None
    else:
        membership.user = user
        membership.workspace = workspace
        key.membership = membership
    decision: DecisionRow = None
    if repository is not None and values[_DECISION_AT] is not None:
        decision = tuple(values[_DECISION_AT:])
    return key, decision


def resolve_api_key(raw: str, slug: str | None, *, repository: str | None = None) -> ApiPrincipal:
    """The principal for a presented key (and, when given, the workspace slug of the URL), or AuthenticationFailed.

    ``repository`` (the access check): on PostgreSQL, also read the decision's row for the key's member
    and that repository in the same statement (``ApiPrincipal.decision_row``).
    """
    prefix = split_key(raw)
    key = None
    decision_row: DecisionRow | Unread = UNREAD
    if prefix:
        conn = default_connection()  # not the proxy: the lookup reads nine of its attributes
        with_decision = repository is not None and is_postgresql(conn)
        key, row = _fetch_key(conn, prefix, repository if with_decision else None)
        if with_decision:
            decision_row = row
    # Hashed and compared even when nothing matched, so timing does not tell which prefixes exist.
    if not secret_matches(raw, key.key_hash if key is not None else None) or key is None:
        raise exceptions.AuthenticationFailed(_REFUSED)
    now = timezone.now()
    if key.revoked_at is not None or (key.expires_at is not None and key.expires_at <= now):
        raise exceptions.AuthenticationFailed(_REFUSED)
    if slug is not None and key.workspace.slug != slug:
        # Another workspace's URL: the same answer as a bad key, and no data.
        raise exceptions.AuthenticationFailed(_REFUSED)
    membership = key.membership
    if membership is not None:
        valid_after = membership.credentials_valid_after
        if (
            not membership.is_active
            or not membership.user.is_active
            or (valid_after is not None and key.created_at < valid_after)
        ):
            # Deprovisioning revokes keys in a background task; this refuses them before it runs.
            raise exceptions.AuthenticationFailed(_REFUSED)
        # A SAML-only workspace: the member's SSO sign-in authorises the key (workspaces.policy). A known key of
        # this workspace, so the answer may say why (403) and how to fix it; recorded once per key and hour.
        sso_problem = personal_key_sso_problem(key.workspace, membership, now)
        if sso_problem:
            api_key_sso_refusal_record(api_key=key)
            raise exceptions.PermissionDenied(sso_problem)
    record_use(key, now)
    if membership is None or decision_row is UNREAD:
        return ApiPrincipal(api_key=key, workspace=key.workspace, membership=membership)
    return ApiPrincipal(
        api_key=key, workspace=key.workspace, membership=membership,
        decision_row=decision_row, decision_repository=repository,
    )


class ApiKeyAuthentication(BaseAuthentication):
    """DRF authentication for ``/api/v1/``: sets ``request.user`` and ``request.auth`` (an ``ApiPrincipal``)."""

    def authenticate(self, request: Request) -> tuple[object, ApiPrincipal] | None:
        raw = key_from_request(request)
        if raw is None:
            return None  # no credential at all: the permission check answers 401 with WWW-Authenticate
        if not raw:
            raise exceptions.AuthenticationFailed("Empty API key.")
        kwargs = (getattr(request, "parser_context", None) or {}).get("kwargs") or {}
        principal = self.resolve(request, raw, kwargs.get("slug"))
        user = principal.membership.user if principal.membership is not None else ServiceKeyUser(principal.api_key)
        return user, principal

    def resolve(self, request: Request, raw: str, slug: str | None) -> ApiPrincipal:
        return resolve_api_key(raw, slug)

    def authenticate_header(self, request: Request) -> str:
        return challenge("Bearer", realm=REALM)
