"""What a deprovisioning job revokes: session grants, personal API keys, OAuth tokens; and its audit event.

Each step takes a batch of jobs and costs a few statements for all of it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from importlib import import_module
from typing import Any

from django.apps import apps as django_apps
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from audit.record import Actor, record_event

from ..grants import SESSION_KEY
from ..models import ApiKey, DeprovisionJob, UserSession

logger = logging.getLogger(__name__)


def _revoke_session_grants(jobs: Sequence[DeprovisionJob]) -> dict[int, int]:
    """Remove each job's workspace grant from its person's database sessions issued before the job.

    Sessions are found through the ``UserSession`` index written at login, so only these people's
    rows are read (one query for a whole batch of jobs). The grant check already refuses them
    (``credentials_valid_after``); this removes the grant itself so the session no longer claims the
    workspace on any node. Returns the number of sessions that lost a grant, per job id.
    """
    revoked = dict.fromkeys((job.pk for job in jobs), 0)
    store_class = import_module(settings.SESSION_ENGINE).SessionStore
    if not hasattr(store_class, "get_model_class"):
        logger.warning("SESSION_ENGINE %s is not database-backed: session grants not revoked", settings.SESSION_ENGINE)
        return revoked
    session_model = store_class.get_model_class()
    store = store_class()
    user_ids = {job.user_id for job in jobs}
    index = list(UserSession.objects.filter(user_id__in=user_ids).values_list("user_id", "session_key"))
    if not index:
        return revoked
    keys = {key for _, key in index}
    # In key order: two workers revoking for the same person lock their sessions in the same order.
    rows = {row.session_key: row for row in
            session_model.objects.select_for_update().filter(session_key__in=keys).order_by("session_key")}
    gone = keys - set(rows)
    if gone:  # logged out, cycled or cleared: drop the index entries
        UserSession.objects.filter(user_id__in=user_ids, session_key__in=gone).delete()
    keys_of: dict[int, list[str]] = {}
    for user_id, key in index:
        if key in rows:
            keys_of.setdefault(user_id, []).append(key)
    now = timezone.now()
    decoded: dict[str, dict[str, Any]] = {}
    changed: set[str] = set()
    for job in jobs:
        workspace_key = str(job.workspace_id)
        cutoff = job.created_at.timestamp()
        for key in keys_of.get(job.user_id, []):
            row = rows[key]
            if row.expire_date <= now:
                continue
            data = decoded.get(key)
            if data is None:
                data = decoded[key] = store.decode(row.session_data)
            grants = dict(data.get(SESSION_KEY) or {})
            grant = grants.get(workspace_key)
            # A grant issued after the deactivation (reactivated, signed in again) is not ours to take.
            if grant is None or float(grant.get("at", 0)) >= cutoff:
                continue
            del grants[workspace_key]
            data[SESSION_KEY] = grants
            changed.add(key)
            revoked[job.pk] += 1
    if changed:
        for key in changed:
            rows[key].session_data = store.encode(decoded[key])
        session_model.objects.bulk_update([rows[key] for key in sorted(changed)], ["session_data"])
    return revoked


def _revoke_api_keys(jobs: Sequence[DeprovisionJob]) -> dict[int, int]:
    """Personal API keys of each job's person in its workspace, created before the job: revoked.

    One read (locked) and one UPDATE for the whole batch; per job id, how many keys it revoked.
    """
    revoked = dict.fromkeys((job.pk for job in jobs), 0)
    rows = list(
        ApiKey.objects.select_for_update(of=("self",))
        .filter(
            workspace_id__in={job.workspace_id for job in jobs},
            membership__user_id__in={job.user_id for job in jobs},
            revoked_at__isnull=True,
        )
        .order_by("pk")
        .values_list("pk", "workspace_id", "membership__user_id", "created_at")
    )
    taken: dict[int, None] = {}
    for job in jobs:  # in the batch's order: a key two jobs could claim counts for the first (as one by one)
        for pk, workspace_id, user_id, created_at in rows:
            if (workspace_id, user_id) == (job.workspace_id, job.user_id) and created_at <= job.created_at \
                    and pk not in taken:
                taken[pk] = None
                revoked[job.pk] += 1
    if taken:
        ApiKey.objects.filter(pk__in=list(taken)).update(revoked_at=timezone.now())
    return revoked


def _revoke_oauth_tokens(jobs: Sequence[DeprovisionJob]) -> dict[int, int]:
    """django-oauth-toolkit tokens of each job's person, when the app is installed.

    OAuth tokens are not bound to a workspace, so all of the person's tokens issued before the
    job are revoked (the safe side: a token could otherwise still reach this workspace).
    """
    revoked = dict.fromkeys((job.pk for job in jobs), 0)
    if not django_apps.is_installed("oauth2_provider"):
        return revoked
    from oauth2_provider.models import get_access_token_model, get_refresh_token_model

    refresh_model, access_model = get_refresh_token_model(), get_access_token_model()
    user_ids = {job.user_id for job in jobs}
    refresh = list(refresh_model.objects.filter(user_id__in=user_ids, revoked__isnull=True).order_by("pk"))
    access = list(access_model.objects.filter(user_id__in=user_ids).order_by("pk").values_list("pk", "user_id", "created"))
    if not refresh and not access:
        return revoked
    to_revoke, access_ids = [], []
    taken_refresh: set[int] = set()
    taken_access: set[int] = set()
    for job in jobs:
        for token in refresh:
            if token.user_id == job.user_id and token.created <= job.created_at and token.pk not in taken_refresh:
                taken_refresh.add(token.pk)
                to_revoke.append(token)
                revoked[job.pk] += 1
        for pk, user_id, created in access:
            if user_id == job.user_id and created <= job.created_at and pk not in taken_access:
                taken_access.add(pk)
                access_ids.append(pk)
                revoked[job.pk] += 1
    for token in to_revoke:
        token.revoke()  # also deletes its access token
    if access_ids:
        access_model.objects.filter(pk__in=access_ids).delete()
    return revoked


def revoke_and_record(jobs: Sequence[DeprovisionJob], actor: Actor) -> dict[int, dict[str, int]]:
    """Revoke what each job's person held in its workspace when the job was written; one audit event
    per job that revoked anything. A batch of jobs costs a few statements plus its audit events."""
    sessions, api_keys, oauth_tokens = _revoke_session_grants(jobs), _revoke_api_keys(jobs), _revoke_oauth_tokens(jobs)
    counts: dict[int, dict[str, int]] = {}
    for job in jobs:
        counts[job.pk] = {"sessions": sessions[job.pk], "api_keys": api_keys[job.pk], "oauth_tokens": oauth_tokens[job.pk]}
        if any(counts[job.pk].values()):  # nothing held, nothing to record (the job keeps its zero counts)
            record_event(
                actor=actor, action="member.credentials_revoked", workspace=job.workspace_id,
                target_type="member", target_id=job.membership_id or "", target_label=job.member_label,
                details={**counts[job.pk], "cause": job.cause, "job": job.pk},
            )
    return counts


@transaction.atomic
def membership_revoke_credentials(*, job: DeprovisionJob, actor: Actor) -> dict[str, int]:
    """Revoke what the person held in the job's workspace when the job was written, and audit the counts.

    Runs inside the runner's transaction (``runner.deprovision_jobs_run``), with the job row locked, so the event is
    written once per job however often the job is delivered. The portal has no invitations
    (members are added directly), so there are none to revoke.
    """
    return revoke_and_record([job], actor)[job.pk]
