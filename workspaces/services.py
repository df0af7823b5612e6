"""Every change to workspaces, members, teams, repositories and API keys.

Each function is one use case: keyword-only, atomic, checks the actor's rights through
``roles``, writes its audit event in the same transaction, and leaves side effects for
``on_commit``. UI, API, SCIM and SAML all come through here so they share the same rules.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import random
import secrets
from collections.abc import Iterable, Sequence
from datetime import timedelta
from importlib import import_module
from typing import Any

from django.apps import apps as django_apps
from django.conf import settings
from django.db import IntegrityError, InterfaceError, OperationalError, connection, transaction
from django.db.models import F
from django.db.models.signals import post_save
from django.utils import timezone
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from audit.record import Actor, record_decision, record_event

from .credentials import hash_secret
from .exceptions import AlreadyExists, LastOwnerError, NotAllowed, ServiceError
from .models import (
    ApiKey,
    DeprovisionCause,
    DeprovisionJob,
    DeprovisionStatus,
    Membership,
    Permission,
    Repository,
    RepositoryGrant,
    Team,
    TeamMembership,
    TeamSource,
    User,
    UserSession,
    Visibility,
    Workspace,
)
from .package_access import (
    ALLOWED_EVENT,
    DENIED_EVENT,
    UNREAD,
    DecisionRow,
    PackageDecision,
    Unread,
    package_access_decision,
)
from .roles import ApiScope, Cap, Role, can, directory_may_grant, may_change_role, may_manage_member

API_KEY_PREFIX = "gh_"

logger = logging.getLogger(__name__)


# ----------------------------------------------------------------------------- helpers


def actor_for_membership(membership: Membership, auth_method: str) -> Actor:
    """The audit actor for a person acting inside a workspace through a membership."""
    return Actor(
        kind="user",
        id=str(membership.user_id),
        label=membership.user.email,
        auth_method=auth_method,
        membership=membership,
    )


def require_capability(actor: Actor, workspace: Workspace, cap: str) -> None:
    """People need the capability in *this* workspace; system, SCIM and service actors were authorised upstream."""
    if actor.kind != "user":
        return
    acting = actor.membership
    if acting is None or acting.workspace_id != workspace.pk or not can(acting, cap):
        raise NotAllowed("Your role in this workspace does not allow this.")


def _acting_membership(actor: Actor, workspace: Workspace) -> Membership | None:
    acting = actor.membership if actor.kind == "user" else None
    return acting if acting is not None and acting.workspace_id == workspace.pk else None


def _touch(obj: Membership | Team, *fields: str) -> None:
    """Save ``fields`` of ``obj``, stamp ``updated_at`` and bump ``version`` (SCIM ``meta.version``).

    On PostgreSQL one ``UPDATE ... RETURNING version`` (its SQL built once per model and field set):
    the instance gets the stored version without a second round trip, and the hot SCIM
    deactivate path skips the ORM's save machinery; ``post_save`` is still sent, as ``save`` would.
    """
    obj.updated_at = timezone.now()
    if connection.vendor != "postgresql":
        obj.version = F("version") + 1
        obj.save(update_fields=[*fields, "updated_at", "version"])
        obj.refresh_from_db(fields=["version"])
        return
    model = type(obj)
    key = (model, fields)
    prepared = _TOUCH_SQL.get(key)
    if prepared is None:
        qn = connection.ops.quote_name
        columns = [model._meta.get_field(name) for name in (*fields, "updated_at")]
        sets = ", ".join(f"{qn(f.column)} = %s" for f in columns)
        version = qn(model._meta.get_field("version").column)
        sql = (
            f"UPDATE {qn(model._meta.db_table)} SET {sets}, {version} = {version} + 1 "
            f"WHERE {qn(model._meta.pk.column)} = %s RETURNING {version}"
        )
        prepared = _TOUCH_SQL[key] = (sql, columns)
    sql, columns = prepared
    params = [f.get_db_prep_save(getattr(obj, f.attname), connection) for f in columns]
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, obj.pk])
        row = cursor.fetchone()
    if row is None:
        raise model.DoesNotExist(f"{model.__name__} {obj.pk} no longer exists.")
    obj.version = row[0]
    # Keep the ORM's contract for whoever listens (scim.list_index bumps its Users list version when a
    # member's is_active or scim_username changes): the same signal save(update_fields=...) sends.
    post_save.send(
        sender=model, instance=obj, created=False, update_fields=frozenset((*fields, "updated_at", "version")),
        raw=False, using=connection.alias,
    )


_TOUCH_SQL: dict[tuple[type, tuple[str, ...]], tuple[str, list[Any]]] = {}


def _lock_workspace(workspace: Workspace) -> Workspace:
    # Serialises Owner-count decisions: two Owners demoting each other cannot both win.
    return Workspace.objects.select_for_update().get(pk=workspace.pk)


def _ensure_other_active_owner(membership: Membership) -> None:
    _lock_workspace(membership.workspace)
    others = (
        Membership.objects.filter(workspace_id=membership.workspace_id, role=Role.OWNER, is_active=True)
        .exclude(pk=membership.pk)
        .exists()
    )
    if not others:
        raise LastOwnerError(
            "This is the last active Owner of the workspace. Make another member Owner first."
        )


def _member_target(membership: Membership) -> dict[str, Any]:
    return {"target_type": "member", "target_id": membership.pk, "target_label": membership.user.email}


# ----------------------------------------------------------------------------- users and workspaces


def user_get_or_create(*, email: str, full_name: str = "", password: str | None = None) -> tuple[User, bool]:
    """The global account for an email (matched case-insensitively). Never changes an existing one."""
    email = User.objects.normalize_email(email)
    existing = User.objects.filter(email__iexact=email).first()
    if existing is not None:
        return existing, False
    return User.objects.create_user(email=email, password=password, full_name=full_name), True


@transaction.atomic
def workspace_create(*, slug: str, name: str, owner: User, actor: Actor) -> Workspace:
    """Create a workspace; its creator becomes its first Owner."""
    slug = slug.strip().lower()
    if Workspace.objects.filter(slug=slug).exists():
        raise AlreadyExists(f"The workspace slug {slug!r} is taken. Choose another.", field="slug")
    workspace = Workspace(slug=slug, name=name.strip() or slug)
    workspace.full_clean()
    workspace.save()
    record_event(
        actor=actor, action="workspace.created", workspace=workspace,
        target_type="workspace", target_id=workspace.pk, target_label=slug,
        details={"name": workspace.name, "owner": owner.email},
    )
    membership = Membership.objects.create(workspace=workspace, user=owner, role=Role.OWNER)
    record_event(
        actor=actor, action="member.created", workspace=workspace, **_member_target(membership),
        details={"role": Role.OWNER, "source": "workspace_create"},
    )
    return workspace


@transaction.atomic
def workspace_update_policy(*, workspace: Workspace, actor: Actor, **changes: Any) -> Workspace:
    """Change policy flags (name, JIT, default role...). SAML-only has its own guarded path in ``saml``."""
    require_capability(actor, workspace, Cap.SETTINGS_MANAGE)
    allowed = {"name", "jit_provisioning", "default_role", "require_2fa", "audit_retention_days", "scim_may_grant_owner"}
    unknown = set(changes) - allowed
    if unknown:
        raise ServiceError(f"Unknown setting(s): {', '.join(sorted(unknown))}")
    before = {k: getattr(workspace, k) for k in changes}
    for key, value in changes.items():
        setattr(workspace, key, value)
    workspace.full_clean()
    workspace.save(update_fields=list(changes))
    record_event(
        actor=actor, action="workspace.settings_changed", workspace=workspace,
        target_type="workspace", target_id=workspace.pk, target_label=workspace.slug,
        details={"before": before, "after": changes},
    )
    return workspace


# ----------------------------------------------------------------------------- memberships


@transaction.atomic
def membership_add(
    *,
    workspace: Workspace,
    email: str,
    actor: Actor,
    role: str = Role.MEMBER,
    full_name: str = "",
    password: str | None = None,
    visibility: str = Visibility.PUBLIC,
    source: str = "ui",
    **fields: Any,
) -> Membership:
    """Add a person to a workspace, creating their global account if needed.

    An existing account gains a membership here and nothing else: no authority elsewhere,
    and its email and password are left as they are.
    """
    require_capability(actor, workspace, Cap.MEMBER_MANAGE)
    if role not in Role.values:
        raise ServiceError(f"Unknown role {role!r}. Use one of: {', '.join(Role.values)}.", field="role")
    acting = _acting_membership(actor, workspace)
    if role == Role.OWNER and actor.kind == "user" and not can(acting, Cap.MEMBER_MAKE_OWNER):
        raise NotAllowed("Only Owners can make Owners.", field="role")
    user, created = user_get_or_create(email=email, full_name=full_name, password=password)
    if Membership.objects.filter(workspace=workspace, user=user).exists():
        raise AlreadyExists(f"{user.email} is already a member of this workspace.", field="email")
    try:
        with transaction.atomic():
            membership = Membership.objects.create(
                workspace=workspace, user=user, role=role, visibility=visibility, **fields
            )
    except IntegrityError as exc:
        raise AlreadyExists("A member with this userName already exists in this workspace.", field="email") from exc
    record_event(
        actor=actor, action="member.created", workspace=workspace, **_member_target(membership),
        details={"role": role, "visibility": visibility, "source": source, "new_account": created},
    )
    return membership


@transaction.atomic
def membership_change_role(*, membership: Membership, role: str, actor: Actor) -> Membership:
    """Change an org role. Only Owners make or unmake Owners; the last active Owner keeps the role."""
    workspace = membership.workspace
    require_capability(actor, workspace, Cap.MEMBER_MANAGE)
    if role not in Role.values:
        raise ServiceError(f"Unknown role {role!r}. Use one of: {', '.join(Role.values)}.", field="role")
    acting = _acting_membership(actor, workspace)
    if actor.kind == "user" and not may_change_role(acting, membership, role):
        raise NotAllowed("Only Owners can make Owners or change an Owner's role.", field="role")
    if membership.role == role:
        return membership
    if membership.role == Role.OWNER and membership.is_active:
        _ensure_other_active_owner(membership)
    before = membership.role
    membership.role = role
    _touch(membership, "role")
    record_event(
        actor=actor, action="member.role_changed", workspace=workspace, **_member_target(membership),
        details={"before": {"role": before}, "after": {"role": role}},
    )
    return membership


@transaction.atomic
def membership_set_visibility(*, membership: Membership, visibility: str, actor: Actor) -> Membership:
    workspace = membership.workspace
    acting = _acting_membership(actor, workspace)
    if not (acting is not None and acting.pk == membership.pk):
        require_capability(actor, workspace, Cap.MEMBER_MANAGE)
    if visibility not in Visibility.values:
        raise ServiceError(f"Unknown visibility {visibility!r}.", field="visibility")
    if membership.visibility == visibility:
        return membership
    before = membership.visibility
    membership.visibility = visibility
    _touch(membership, "visibility")
    record_event(
        actor=actor, action="member.visibility_changed", workspace=workspace, **_member_target(membership),
        details={"before": {"visibility": before}, "after": {"visibility": visibility}},
    )
    return membership


@transaction.atomic
def membership_set_auditor(*, membership: Membership, is_auditor: bool, actor: Actor) -> Membership:
    """Give or take the read-only auditor permission (Owners only)."""
    require_capability(actor, membership.workspace, Cap.MEMBER_SET_AUDITOR)
    if membership.is_auditor == is_auditor:
        return membership
    membership.is_auditor = is_auditor
    _touch(membership, "is_auditor")
    record_event(
        actor=actor, action="member.auditor_changed", workspace=membership.workspace,
        **_member_target(membership),
        details={"before": {"is_auditor": not is_auditor}, "after": {"is_auditor": is_auditor}},
    )
    return membership


def _check_may_manage(actor: Actor, membership: Membership) -> None:
    require_capability(actor, membership.workspace, Cap.MEMBER_MANAGE)
    acting = _acting_membership(actor, membership.workspace)
    if actor.kind == "user" and not may_manage_member(acting, membership):
        raise NotAllowed("Only Owners can deactivate or remove an Owner.")


@transaction.atomic
def membership_deactivate(*, membership: Membership, actor: Actor, reason: str = "") -> Membership:
    """Deactivate at commit: the grant check refuses the member's very next request.

    Credentials are revoked afterwards from the outbox (``DeprovisionJob``, written in this
    transaction) by a Celery task queued on commit and, if that is lost, by the beat sweeper.
    """
    _check_may_manage(actor, membership)
    if not membership.is_active:
        return membership
    if membership.role == Role.OWNER:
        _ensure_other_active_owner(membership)
    now = timezone.now()
    membership.is_active = False
    membership.deactivated_at = now
    membership.credentials_valid_after = now
    _touch(membership, "is_active", "deactivated_at", "credentials_valid_after")
    record_event(
        actor=actor, action="member.deactivated", workspace=membership.workspace, **_member_target(membership),
        details={"before": {"active": True}, "after": {"active": False}, "reason": reason},
    )
    # Outbox row in this transaction; the task is enqueued on commit (see _deprovision_job_add).
    _deprovision_job_add(membership=membership, cause=DeprovisionCause.DEACTIVATED)
    return membership


@transaction.atomic
def membership_reactivate(*, membership: Membership, actor: Actor) -> Membership:
    """Restore the membership. Credentials revoked at deactivation stay revoked."""
    _check_may_manage(actor, membership)
    if membership.is_active:
        return membership
    membership.is_active = True
    membership.deactivated_at = None
    _touch(membership, "is_active", "deactivated_at")
    record_event(
        actor=actor, action="member.reactivated", workspace=membership.workspace, **_member_target(membership),
        details={"before": {"active": False}, "after": {"active": True}},
    )
    return membership


@transaction.atomic
def membership_remove(*, membership: Membership, actor: Actor) -> None:
    """Remove a person from the workspace (their global account stays)."""
    _check_may_manage(actor, membership)
    if membership.role == Role.OWNER and membership.is_active:
        _ensure_other_active_owner(membership)
    target = _member_target(membership)  # before delete(), which clears the pk
    # The person's session grants for this workspace outlive the row: revoke them through the outbox too.
    _deprovision_job_add(membership=membership, cause=DeprovisionCause.REMOVED)
    # The row goes before the event is recorded, as in every membership change: the SCIM list index
    # row (bumped on delete) is then always locked before the audit chain head (scim/list_index.py).
    membership.delete()
    record_event(
        actor=actor, action="member.removed", workspace=membership.workspace, **target,
        details={"role": membership.role},
    )


@transaction.atomic
def membership_record_login(*, membership: Membership, actor: Actor, action: str = "auth.login_succeeded") -> None:
    """Record a successful login into one workspace."""
    Membership.objects.filter(pk=membership.pk).update(last_login_at=timezone.now())
    record_event(actor=actor, action=action, workspace=membership.workspace, **_member_target(membership))


# ----------------------------------------------------------------------------- teams


@transaction.atomic
def team_create(
    *, workspace: Workspace, name: str, actor: Actor, description: str = "", external_id: str = ""
) -> Team:
    require_capability(actor, workspace, Cap.TEAM_MANAGE)
    name = name.strip()
    if not name:
        raise ServiceError("A team needs a name.", field="name")
    if Team.objects.filter(workspace=workspace, name__iexact=name).exists():
        raise AlreadyExists(f"A team named {name!r} already exists.", field="name")
    team = Team.objects.create(workspace=workspace, name=name, description=description, external_id=external_id)
    record_event(
        actor=actor, action="team.created", workspace=workspace,
        target_type="team", target_id=team.pk, target_label=name, details={"name": name},
    )
    return team


@transaction.atomic
def team_rename(*, team: Team, name: str, actor: Actor) -> Team:
    require_capability(actor, team.workspace, Cap.TEAM_MANAGE)
    name = name.strip()
    if not name:
        raise ServiceError("A team needs a name.", field="name")
    if name == team.name:
        return team
    if Team.objects.filter(workspace_id=team.workspace_id, name__iexact=name).exclude(pk=team.pk).exists():
        raise AlreadyExists(f"A team named {name!r} already exists.", field="name")
    before = team.name
    team.name = name
    _touch(team, "name")
    record_event(
        actor=actor, action="team.renamed", workspace=team.workspace,
        target_type="team", target_id=team.pk, target_label=name,
        details={"before": {"name": before}, "after": {"name": name}},
    )
    return team


@transaction.atomic
def team_delete(*, team: Team, actor: Actor) -> None:
    require_capability(actor, team.workspace, Cap.TEAM_MANAGE)
    record_event(
        actor=actor, action="team.deleted", workspace=team.workspace,
        target_type="team", target_id=team.pk, target_label=team.name,
        details={"members": team.team_memberships.count()},
    )
    team.delete()


def _team_member_event(actor: Actor, team: Team, membership: Membership, action: str, source: str) -> None:
    record_event(
        actor=actor, action=action, workspace=team.workspace,
        target_type="team", target_id=team.pk, target_label=team.name,
        details={"member": membership.user.email, "member_id": membership.pk, "source": source},
    )


@transaction.atomic
def team_add_members(
    *, team: Team, memberships: Iterable[Membership], actor: Actor, source: str = TeamSource.MANUAL
) -> int:
    """Add several members in one transaction (a SCIM group PATCH with thousands of members is one call)."""
    require_capability(actor, team.workspace, Cap.TEAM_MANAGE)
    team = Team.objects.select_for_update().get(pk=team.pk)  # read-modify-write on membership lists
    existing = set(team.team_memberships.values_list("membership_id", flat=True))
    added = 0
    for membership in memberships:
        if membership.workspace_id != team.workspace_id:
            raise ServiceError("That member belongs to another workspace.")
        if membership.pk in existing:
            continue
        TeamMembership.objects.create(team=team, membership=membership, source=source)
        existing.add(membership.pk)
        _team_member_event(actor, team, membership, "team.member_added", source)
        added += 1
    if added:
        _touch(team)
    return added


def team_add_member(*, team: Team, membership: Membership, actor: Actor, source: str = TeamSource.MANUAL) -> bool:
    return team_add_members(team=team, memberships=[membership], actor=actor, source=source) == 1


@transaction.atomic
def team_remove_members(*, team: Team, memberships: Iterable[Membership], actor: Actor, source: str = "manual") -> int:
    require_capability(actor, team.workspace, Cap.TEAM_MANAGE)
    team = Team.objects.select_for_update().get(pk=team.pk)
    removed = 0
    for membership in memberships:
        deleted, _ = TeamMembership.objects.filter(team=team, membership=membership).delete()
        if deleted:
            _team_member_event(actor, team, membership, "team.member_removed", source)
            removed += 1
    if removed:
        _touch(team)
    return removed


def team_remove_member(*, team: Team, membership: Membership, actor: Actor, source: str = "manual") -> bool:
    return team_remove_members(team=team, memberships=[membership], actor=actor, source=source) == 1


# ----------------------------------------------------------------------------- repositories


@transaction.atomic
def repository_create(
    *, workspace: Workspace, name: str, actor: Actor, description: str = "", environment: str = ""
) -> Repository:
    require_capability(actor, workspace, Cap.REPOSITORY_MANAGE)
    name = name.strip()
    if not name:
        raise ServiceError("A repository needs a name.", field="name")
    if Repository.objects.filter(workspace=workspace, name__iexact=name).exists():
        raise AlreadyExists(f"A repository named {name!r} already exists.", field="name")
    repo = Repository.objects.create(
        workspace=workspace, name=name, description=description, environment=environment.strip()
    )
    record_event(
        actor=actor, action="repository.created", workspace=workspace,
        target_type="repository", target_id=repo.pk, target_label=name,
        details={"environment": repo.environment},
    )
    return repo


@transaction.atomic
def repository_grant(
    *,
    repository: Repository,
    permission: str,
    actor: Actor,
    team: Team | None = None,
    membership: Membership | None = None,
) -> RepositoryGrant:
    """Give (or change) a team's or a member's permission on a repository."""
    require_capability(actor, repository.workspace, Cap.REPOSITORY_MANAGE)
    if (team is None) == (membership is None):
        raise ServiceError("Grant to exactly one team or one member.")
    if permission not in Permission.values:
        raise ServiceError(f"Unknown permission {permission!r}.", field="permission")
    grantee = team or membership
    if grantee.workspace_id != repository.workspace_id:
        raise ServiceError("That grantee belongs to another workspace.")
    grant, created = RepositoryGrant.objects.get_or_create(
        repository=repository, team=team, membership=membership, defaults={"permission": permission}
    )
    before = None if created else grant.permission
    if not created and grant.permission == permission:
        return grant
    if not created:
        grant.permission = permission
        grant.save(update_fields=["permission"])
    record_event(
        actor=actor, action="repository.grant_changed", workspace=repository.workspace,
        target_type="repository", target_id=repository.pk, target_label=repository.name,
        details={
            "grantee": grant.grantee_label,
            "before": {"permission": before},
            "after": {"permission": permission},
        },
    )
    return grant


@transaction.atomic
def repository_revoke_grant(*, grant: RepositoryGrant, actor: Actor) -> None:
    repository = grant.repository
    require_capability(actor, repository.workspace, Cap.REPOSITORY_MANAGE)
    record_event(
        actor=actor, action="repository.grant_removed", workspace=repository.workspace,
        target_type="repository", target_id=repository.pk, target_label=repository.name,
        details={"grantee": grant.grantee_label, "before": {"permission": grant.permission}},
    )
    grant.delete()


# ----------------------------------------------------------------------------- API keys


@transaction.atomic
def api_key_create(
    *,
    workspace: Workspace,
    name: str,
    actor: Actor,
    membership: Membership | None = None,
    scopes: Iterable[str] = (),
) -> tuple[ApiKey, str]:
    """Create a key and return it with its plain value, which is never stored and never shown again."""
    name = name.strip()
    if not name:
        raise ServiceError("Give the key a name so you can recognise it later.", field="name")
    acting = _acting_membership(actor, workspace)
    if membership is None:
        require_capability(actor, workspace, Cap.APIKEY_SERVICE)
    elif actor.kind == "user" and (acting is None or acting.pk != membership.pk or not can(acting, Cap.APIKEY_OWN)):
        raise NotAllowed("You can create personal keys only for yourself.")
    if membership is not None and (membership.workspace_id != workspace.pk or not membership.is_active):
        raise ServiceError("Personal keys need an active member of this workspace.")
    scopes = sorted(set(scopes))
    unknown = set(scopes) - set(ApiScope.values)
    if unknown:
        raise ServiceError(f"Unknown scope(s): {', '.join(sorted(unknown))}. Use: {', '.join(ApiScope.values)}.", field="scopes")
    if membership is None and not scopes:
        raise ServiceError("A service key needs at least one scope.", field="scopes")
    secret = secrets.token_urlsafe(32)
    prefix = secrets.token_hex(4)
    plain = f"{API_KEY_PREFIX}{prefix}_{secret}"
    key = ApiKey.objects.create(
        workspace=workspace, membership=membership, name=name, prefix=prefix,
        key_hash=hash_secret(plain), scopes=scopes,
        created_by=membership.user if membership else (acting.user if acting else None),
    )
    record_event(
        actor=actor, action="api_key.created", workspace=workspace,
        target_type="api_key", target_id=key.pk, target_label=f"{name} ({prefix})",
        details={"kind": "personal" if membership else "service", "owner": membership.email if membership else "", "scopes": key.scopes},
    )
    return key, plain


@transaction.atomic
def api_key_revoke(*, api_key: ApiKey, actor: Actor) -> ApiKey:
    workspace = api_key.workspace
    acting = _acting_membership(actor, workspace)
    own = acting is not None and api_key.membership_id == acting.pk
    if not own:
        require_capability(actor, workspace, Cap.APIKEY_SERVICE if api_key.is_service_key else Cap.MEMBER_MANAGE)
    if api_key.revoked_at is not None:
        return api_key
    api_key.revoked_at = timezone.now()
    api_key.save(update_fields=["revoked_at"])
    record_event(
        actor=actor, action="api_key.revoked", workspace=workspace,
        target_type="api_key", target_id=api_key.pk, target_label=f"{api_key.name} ({api_key.prefix})",
    )
    return api_key


# ----------------------------------------------------------------------------- deprovisioning (issue 6)
#
# The outbox: every deactivation, removal or account disable writes a DeprovisionJob in its own
# transaction, next to its audit event. After commit the job is enqueued (Celery, best effort);
# the beat sweeper re-enqueues any job that is not done when its ``due_at`` passes (Redis was
# down, a worker died). Running a job twice has no second effect: the job row is locked, and its
# revocation, its audit event and its ``done`` status commit together.


def _deprovision_job_add(*, membership: Membership, cause: str) -> DeprovisionJob:
    """Write the outbox row inside the caller's transaction and enqueue it once that commits."""
    now = timezone.now()
    job = DeprovisionJob(
        workspace_id=membership.workspace_id,
        user_id=membership.user_id,
        membership=membership,
        member_label=membership.user.email[:254],
        cause=cause,
        created_at=now,
        updated_at=now,
        due_at=now + timedelta(seconds=settings.DEPROVISION_RETRY_AFTER),
    )
    _insert_job(job)
    job_id = job.pk
    transaction.on_commit(lambda: _enqueue_new_deprovision_job(job_id))
    return job


def _enqueue_new_deprovision_job(job_id: int) -> None:
    from .tasks import enqueue_new_deprovision_job

    enqueue_new_deprovision_job(job_id)


def _insert_job(job: DeprovisionJob) -> None:
    """INSERT the outbox row. On PostgreSQL one prebuilt ``INSERT ... RETURNING id`` (built once per
    process from the model's columns): the ORM's insert compilation cost more than the round trip."""
    if connection.vendor != "postgresql":
        job.save(force_insert=True)
        return
    global _JOB_INSERT
    if _JOB_INSERT is None:
        qn = connection.ops.quote_name
        fields = [f for f in DeprovisionJob._meta.concrete_fields if not f.primary_key]
        _JOB_INSERT = (
            f"INSERT INTO {qn(DeprovisionJob._meta.db_table)} ({', '.join(qn(f.column) for f in fields)}) "
            f"VALUES ({', '.join(['%s'] * len(fields))}) RETURNING {qn(DeprovisionJob._meta.pk.column)}",
            fields,
        )
    sql, fields = _JOB_INSERT
    with connection.cursor() as cursor:
        cursor.execute(sql, [f.get_db_prep_save(f.pre_save(job, True), connection) for f in fields])
        job.pk = cursor.fetchone()[0]
    job._state.adding = False
    job._state.db = connection.alias


_JOB_INSERT: tuple[str, list[Any]] | None = None


def _enqueue_deprovision(job_ids: list[int]) -> None:
    from .tasks import enqueue_deprovision_jobs

    enqueue_deprovision_jobs(job_ids)


def _revoke_session_grants(jobs: Sequence[DeprovisionJob]) -> dict[int, int]:
    """Remove each job's workspace grant from its person's database sessions issued before the job.

    Sessions are found through the ``UserSession`` index written at login, so only these people's
    rows are read (one query for a whole batch of jobs). The grant check already refuses them
    (``credentials_valid_after``); this removes the grant itself so the session no longer claims the
    workspace on any node. Returns the number of sessions that lost a grant, per job id.
    """
    from .access import SESSION_KEY  # access imports this module

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


def _revoke_and_record(jobs: Sequence[DeprovisionJob], actor: Actor) -> dict[int, dict[str, int]]:
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

    Runs inside ``deprovision_job_run``'s transaction, with the job row locked, so the event is
    written once per job however often the job is delivered. The portal has no invitations
    (members are added directly), so there are none to revoke.
    """
    return _revoke_and_record([job], actor)[job.pk]


def _retry_delay(attempts: int) -> float:
    """Exponential backoff with jitter: 2, 4, 8... seconds, capped."""
    base = settings.DEPROVISION_RETRY_BASE * (2 ** max(attempts - 1, 0))
    return min(float(settings.DEPROVISION_RETRY_MAX_DELAY), base) * random.uniform(0.8, 1.2)  # noqa: S311


def deprovision_jobs_run(*, job_ids: Sequence[int], actor: Actor, fill_to: int = 0) -> dict[int, str]:
    """Run outbox jobs; safe to call any number of times with the same ids, concurrently too.

    Returns each job's outcome: ``done``; ``skipped`` (already finished, or finished meanwhile by a
    twin delivery); ``retry`` (failed, retried later with backoff); ``failed`` (its last attempt
    failed: kept and shown to Owners). Jobs are claimed in one transaction (status ``running``,
    attempt counted), then revoked in transactions of ``DEPROVISION_TXN_SIZE`` jobs. A job's
    revocation, its audit event and its ``done`` status commit together, with the job row locked:
    that is what makes a second delivery a no-op. Database connection errors propagate (the task
    retries the whole batch).

    ``fill_to``: also claim fresh pending jobs (never attempted, not locked by anyone) until that many
    jobs run. The worker passes it: when deactivations arrive one message per job, one message then
    revokes a batch, and the messages of the jobs it took find them done and cost one query each.
    Jobs waiting for a retry (attempted before) are left to their backoff.
    """
    outcomes: dict[int, str] = dict.fromkeys(job_ids, "skipped")
    now = timezone.now()
    open_statuses = (DeprovisionStatus.PENDING, DeprovisionStatus.RUNNING)
    with transaction.atomic():
        claimed = list(
            DeprovisionJob.objects.select_for_update()
            .filter(pk__in=list(job_ids), status__in=open_statuses)
            .order_by("pk")
            .values_list("pk", flat=True)
        )
        if fill_to > len(claimed):
            claimed += list(
                DeprovisionJob.objects.select_for_update(skip_locked=True)
                .filter(status=DeprovisionStatus.PENDING, attempts=0)
                .exclude(pk__in=list(job_ids))
                .order_by("pk")
                .values_list("pk", flat=True)[: fill_to - len(claimed)]
            )
        if not claimed:
            return outcomes
        DeprovisionJob.objects.filter(pk__in=claimed).update(
            status=DeprovisionStatus.RUNNING, attempts=F("attempts") + 1, updated_at=now,
            # If this worker dies, the sweeper hands the jobs out again after this.
            due_at=now + timedelta(seconds=settings.DEPROVISION_RETRY_AFTER),
        )
    size = max(1, settings.DEPROVISION_TXN_SIZE)
    for start in range(0, len(claimed), size):
        with transaction.atomic():
            jobs = list(
                DeprovisionJob.objects.select_for_update(of=("self",))
                .filter(pk__in=claimed[start : start + size]).order_by("pk")
            )
            # Audit chain heads are locked per workspace: take them in one order in every worker.
            # A twin delivery may have finished some while we waited for the lock.
            running = sorted((j for j in jobs if j.status == DeprovisionStatus.RUNNING), key=lambda j: (j.workspace_id, j.pk))
            outcomes.update(_deprovision_jobs_revoke(running, actor))
    return outcomes


def _deprovision_jobs_revoke(jobs: list[DeprovisionJob], actor: Actor) -> dict[int, str]:
    """Revoke a batch together (a few statements for all of it); if anything in it fails, run the
    jobs one by one so that one failing job does not hold back, or undo, the others."""
    if len(jobs) > 1:
        try:
            with transaction.atomic():
                counts = _revoke_and_record(jobs, actor)
                _jobs_done(jobs, counts)
            return dict.fromkeys((job.pk for job in jobs), "done")
        except (OperationalError, InterfaceError):
            raise
        except Exception:
            logger.warning("a batch of %d deprovisioning jobs failed; running them one by one", len(jobs), exc_info=True)
    return {job.pk: _deprovision_job_revoke(job, actor) for job in jobs}


def _jobs_done(jobs: list[DeprovisionJob], counts: dict[int, dict[str, int]]) -> None:
    """Mark jobs done with what each revoked: one UPDATE per distinct result (usually one)."""
    finished = timezone.now()
    by_result: dict[tuple[tuple[str, int], ...], list[int]] = {}
    for job in jobs:
        job.status, job.result, job.last_error = DeprovisionStatus.DONE, counts[job.pk], ""
        job.finished_at = job.updated_at = finished
        by_result.setdefault(tuple(sorted(counts[job.pk].items())), []).append(job.pk)
    for result, pks in by_result.items():
        DeprovisionJob.objects.filter(pk__in=pks).update(
            status=DeprovisionStatus.DONE, result=dict(result), last_error="", finished_at=finished, updated_at=finished
        )


def _deprovision_job_revoke(job: DeprovisionJob, actor: Actor) -> str:
    try:
        with transaction.atomic():
            counts = membership_revoke_credentials(job=job, actor=actor)
    except (OperationalError, InterfaceError):
        raise
    except Exception as exc:
        logger.exception("deprovisioning job %s failed", job.pk)
        final = job.attempts >= settings.DEPROVISION_MAX_ATTEMPTS
        failed_at = timezone.now()
        job.status = DeprovisionStatus.FAILED if final else DeprovisionStatus.PENDING
        job.last_error = f"{type(exc).__name__}: {exc}"[:2000]
        job.updated_at = failed_at
        job.due_at = failed_at + timedelta(seconds=_retry_delay(job.attempts) + settings.DEPROVISION_RETRY_AFTER)
        job.save(update_fields=["status", "last_error", "updated_at", "due_at"])
        return "failed" if final else "retry"
    _jobs_done([job], {job.pk: counts})
    return "done"


def deprovision_job_run(*, job_id: int, actor: Actor) -> str:
    """Run one outbox job (see ``deprovision_jobs_run``); returns its outcome."""
    return deprovision_jobs_run(job_ids=[job_id], actor=actor)[job_id]


@transaction.atomic
def deprovision_jobs_claim_due(*, limit: int) -> list[int]:
    """Jobs that should have finished by now (pending or running past ``due_at``); pushes their ``due_at`` on.

    ``skip_locked``: a job a worker is running right now is not handed out again.
    """
    now = timezone.now()
    ids = list(
        DeprovisionJob.objects.select_for_update(skip_locked=True)
        .filter(status__in=[DeprovisionStatus.PENDING, DeprovisionStatus.RUNNING], due_at__lte=now)
        .order_by("due_at", "pk")
        .values_list("pk", flat=True)[:limit]
    )
    if ids:
        DeprovisionJob.objects.filter(pk__in=ids).update(
            due_at=now + timedelta(seconds=settings.DEPROVISION_RETRY_AFTER), updated_at=now
        )
    return ids


@transaction.atomic
def deprovision_job_requeue(*, job: DeprovisionJob, actor: Actor) -> DeprovisionJob:
    """Give a failed job a fresh set of attempts (support, after fixing the cause)."""
    job = DeprovisionJob.objects.select_for_update().get(pk=job.pk)
    if job.status != DeprovisionStatus.FAILED:
        return job
    now = timezone.now()
    job.status, job.attempts, job.due_at, job.updated_at = DeprovisionStatus.PENDING, 0, now, now
    job.save(update_fields=["status", "attempts", "due_at", "updated_at"])
    record_event(
        actor=actor, action="member.deprovisioning_requeued", workspace=job.workspace_id,
        target_type="member", target_id=job.membership_id or "", target_label=job.member_label,
        details={"job": job.pk, "last_error": job.last_error[:200]},
    )
    job_id = job.pk
    transaction.on_commit(lambda: _enqueue_deprovision([job_id]))
    return job


@transaction.atomic
def user_disable(*, user: User, actor: Actor, reason: str = "") -> list[DeprovisionJob]:
    """Support disables a global account: it can no longer sign in anywhere, and every workspace it
    belongs to revokes its credentials (one outbox job each, audited in that workspace).

    Memberships keep their state (the workspaces own it); ``credentials_valid_after`` kills every
    existing session grant at once, so re-enabling the account does not revive them. Callers
    (the Django admin action, ``manage.py disable_user``) are restricted to support staff.
    """
    user = User.objects.select_for_update().get(pk=user.pk)
    if not user.is_active:
        return []
    now = timezone.now()
    user.is_active = False
    user.save(update_fields=["is_active"])
    record_event(
        actor=actor, action="user.disabled", workspace=None,
        target_type="user", target_id=user.pk, target_label=user.email, details={"reason": reason},
    )
    memberships = list(Membership.objects.select_related("workspace", "user").filter(user=user).order_by("pk"))
    Membership.objects.filter(pk__in=[m.pk for m in memberships]).update(credentials_valid_after=now)
    jobs = []
    for membership in memberships:
        record_event(
            actor=actor, action="member.account_disabled", workspace=membership.workspace,
            **_member_target(membership), details={"reason": reason},
        )
        jobs.append(_deprovision_job_add(membership=membership, cause=DeprovisionCause.ACCOUNT_DISABLED))
    return jobs


@transaction.atomic
def user_enable(*, user: User, actor: Actor, reason: str = "") -> User:
    """Re-enable a disabled account. Revoked credentials stay revoked; the person signs in again."""
    user = User.objects.select_for_update().get(pk=user.pk)
    if user.is_active:
        return user
    user.is_active = True
    user.save(update_fields=["is_active"])
    record_event(
        actor=actor, action="user.enabled", workspace=None,
        target_type="user", target_id=user.pk, target_label=user.email, details={"reason": reason},
    )
    return user


def user_session_record(*, user: User, session_key: str | None) -> None:
    """Index a new login session so revocation can find it (called by the ``user_logged_in`` receiver)."""
    if session_key:
        UserSession.objects.get_or_create(user=user, session_key=session_key)


def user_session_forget(*, session_key: str | None) -> None:
    if session_key:
        UserSession.objects.filter(session_key=session_key).delete()

# ----------------------------------------------------------------------------- directory (SCIM) profile changes
# Appended for SCIM provisioning (branch scim-core). Same rules as above: keyword-only, atomic, audited.

PROFILE_FIELDS = frozenset(
    {"scim_username", "external_id", "given_name", "family_name", "display_name", "profile", "allowed_environments"}
)


def directory_may_grant_role(*, workspace: Workspace, role: str) -> None:
    """A directory (SCIM, group sync) never makes an Owner unless the workspace allows it (Sentry's policy)."""
    if role not in Role.values:
        raise ServiceError(f"Unknown role {role!r}. Use one of: {', '.join(Role.values)}.", field="role")
    if not directory_may_grant(workspace, role):
        raise NotAllowed(
            "This workspace does not let its identity provider grant the Owner role. "
            "An Owner can allow it in the workspace policy.",
            field="role",
        )


@transaction.atomic
def membership_update_profile(*, membership: Membership, actor: Actor, changes: dict[str, Any]) -> Membership:
    """Change directory-managed profile attributes (SCIM userName, externalId, names, profile, environments).

    Never touches the global account: its login email and password stay as they are.
    Records one ``member.profile_changed`` event with the changed attributes before and after.
    """
    require_capability(actor, membership.workspace, Cap.MEMBER_MANAGE)
    unknown = set(changes) - PROFILE_FIELDS
    if unknown:
        raise ServiceError(f"Unknown profile attribute(s): {', '.join(sorted(unknown))}")
    if "allowed_environments" in changes:
        envs = changes["allowed_environments"]
        if not isinstance(envs, list) or not all(isinstance(e, str) and e.strip() for e in envs):
            raise ServiceError("Allowed environments must be a list of names.", field="allowed_environments")
        changes = {**changes, "allowed_environments": sorted({e.strip() for e in envs})}
    before = {k: getattr(membership, k) for k in changes if getattr(membership, k) != changes[k]}
    if not before:
        return membership
    after = {k: changes[k] for k in before}
    for key, value in after.items():
        setattr(membership, key, value)
    try:
        # A userName taken in this workspace (case-insensitively) is refused by the unique index
        # membership_scim_username_ci_unique: no read to look for it first.
        with transaction.atomic():
            _touch(membership, *after)
    except IntegrityError as exc:
        for key, value in before.items():  # the instance keeps what is stored
            setattr(membership, key, value)
        raise AlreadyExists("A member with this userName already exists in this workspace.", field="userName") from exc
    record_event(
        actor=actor, action="member.profile_changed", workspace=membership.workspace, **_member_target(membership),
        details={"before": before, "after": after},
    )
    return membership


@transaction.atomic
def team_update_external_id(*, team: Team, external_id: str, actor: Actor) -> Team:
    """Record the directory's id for a team (SCIM Group ``externalId``)."""
    require_capability(actor, team.workspace, Cap.TEAM_MANAGE)
    if team.external_id == external_id:
        return team
    before = team.external_id
    team.external_id = external_id
    _touch(team, "external_id")
    record_event(
        actor=actor, action="team.external_id_changed", workspace=team.workspace,
        target_type="team", target_id=team.pk, target_label=team.name,
        details={"before": {"externalId": before}, "after": {"externalId": external_id}},
    )
    return team


# ----------------------------------------------------------------------------- package access (connector API)


def package_access_check(
    *, membership: Membership, repository_name: str, action: str, actor: Actor, api_key: ApiKey | None = None,
    decision_row: DecisionRow | Unread = UNREAD,
) -> PackageDecision:
    """Decide (``package_access.package_access_decision``) and audit the answer before returning it.

    Every call writes ``package.pulled`` / ``package.pushed`` / ``package.deleted`` when allowed and
    ``package.denied`` otherwise, naming the member, the key and the repository. A decision changes
    nothing, so there is no transaction to pair the event with: ``record_decision`` appends it in
    one self-committing statement (the workspace's chain is locked only while PostgreSQL runs it).
    ``decision_row``: the decision's inputs, when the caller read them with the API key (the access check).
    """
    decision = package_access_decision(
        membership=membership, repository_name=repository_name, action=action, row=decision_row
    )
    repository = decision.repository
    record_decision(
        actor=actor,
        action=ALLOWED_EVENT[action] if decision.allowed else DENIED_EVENT,
        workspace=membership.workspace_id,
        target_type="repository",
        target_id=repository.pk if repository else "",
        target_label=repository.name if repository else repository_name[:255],
        details={
            "action": action,
            "allowed": decision.allowed,
            "reason": decision.reason,
            "member": membership.user.email,
            "member_id": membership.pk,
            "permission": decision.permission,
            "api_key": {"id": api_key.pk, "prefix": api_key.prefix} if api_key else None,
        },
    )
    return decision


# ----------------------------------------------------------------------------- two-factor authentication

RECOVERY_CODE_COUNT = 10


def user_actor(user: User, auth_method: str) -> Actor:
    """The audit actor for a person acting on their own account (outside any one workspace)."""
    return Actor(kind="user", id=str(user.pk), label=user.email, auth_method=auth_method)


def _record_account_event(*, user: User, actor: Actor, action: str, details: dict[str, Any] | None = None) -> None:
    """Account events land in every workspace the person is an active member of (their admins see them),
    or in the global chain for someone who belongs nowhere."""
    workspace_ids = list(
        Membership.objects.filter(user=user, is_active=True).values_list("workspace_id", flat=True)
    ) or [None]
    for workspace_id in workspace_ids:
        record_event(
            actor=actor, action=action, workspace=workspace_id,
            target_type="user", target_id=user.pk, target_label=user.email, details=details,
        )


def normalise_recovery_code(code: str) -> str:
    return "".join(code.split()).replace("-", "").lower()


def hash_recovery_code(code: str) -> str:
    """What django-otp's StaticToken stores for a recovery code (its column holds 16 characters).

    Codes are 80 random bits; the stored value is the first 80 bits of their SHA-256 in base32,
    so a leaked table gives nothing to replay and no dictionary to try.
    """
    digest = hashlib.sha256(normalise_recovery_code(code).encode("ascii", "ignore")).digest()
    return base64.b32encode(digest).decode("ascii")[:16].lower()


def _new_recovery_codes(user: User) -> list[str]:
    StaticDevice.objects.filter(user=user).delete()
    device = StaticDevice.objects.create(user=user, name="Recovery codes", confirmed=True)
    codes = []
    for _ in range(RECOVERY_CODE_COUNT):
        raw = base64.b32encode(secrets.token_bytes(10)).decode("ascii").lower()
        codes.append("-".join(raw[i:i + 4] for i in range(0, 16, 4)))
    StaticToken.objects.bulk_create([StaticToken(device=device, token=hash_recovery_code(c)) for c in codes])
    return codes


def confirmed_totp_device(user: User) -> TOTPDevice | None:
    return TOTPDevice.objects.filter(user=user, confirmed=True).first()


@transaction.atomic
def two_factor_enrol_start(*, user: User) -> TOTPDevice:
    """A pending (unconfirmed) TOTP device whose secret the person copies into an authenticator app.

    Nothing is audited yet: a pending device is not a factor and opens nothing until confirmed.
    """
    device = TOTPDevice.objects.filter(user=user, confirmed=False).first()
    if device is None:
        device = TOTPDevice.objects.create(user=user, name="Authenticator app", confirmed=False)
    return device


@transaction.atomic
def two_factor_enrol_confirm(*, user: User, device_id: int, token: str, actor: Actor) -> list[str] | None:
    """Confirm the pending device with a code from the app; returns fresh recovery codes (shown once).

    A wrong code returns None (and is audited): raising would roll back django-otp's throttle count.
    """
    device = TOTPDevice.objects.select_for_update().filter(user=user, pk=device_id, confirmed=False).first()
    if device is None:
        raise ServiceError("Start the set-up again: that authenticator is no longer pending.")
    if not device.verify_token(token.strip()):
        _record_account_event(user=user, actor=actor, action="2fa.verification_failed", details={"step": "enrolment"})
        return None
    device.confirmed = True
    device.save(update_fields=["confirmed"])
    TOTPDevice.objects.filter(user=user).exclude(pk=device.pk).delete()
    codes = _new_recovery_codes(user)
    _record_account_event(user=user, actor=actor, action="2fa.enabled", details={"method": "totp"})
    return codes


@transaction.atomic
def two_factor_disable(*, user: User, actor: Actor) -> None:
    """Remove the authenticator and the recovery codes. Workspaces requiring 2FA ask for a new one at next login."""
    totp, _ = TOTPDevice.objects.filter(user=user).delete()
    static, _ = StaticDevice.objects.filter(user=user).delete()
    if totp or static:
        _record_account_event(user=user, actor=actor, action="2fa.disabled")


@transaction.atomic
def two_factor_recovery_codes_regenerate(*, user: User, actor: Actor) -> list[str]:
    """New recovery codes; the old ones stop working."""
    if confirmed_totp_device(user) is None:
        raise ServiceError("Turn on two-factor authentication first.")
    codes = _new_recovery_codes(user)
    _record_account_event(user=user, actor=actor, action="2fa.recovery_codes_regenerated")
    return codes


@transaction.atomic
def two_factor_verify(*, user: User, token: str, actor: Actor) -> TOTPDevice | StaticDevice | None:
    """The second step of a password login: a TOTP code or a one-time recovery code.

    Returns the device that accepted it, or None (audited as ``2fa.verification_failed``).
    django-otp throttles each device after failures, so guessing gets slower and slower.
    """
    token = token.strip()
    compact = token.replace(" ", "")
    if compact.isdigit() and len(compact) in (6, 8):
        device = confirmed_totp_device(user)
        if device is not None and device.verify_token(compact):
            return device
        _record_account_event(user=user, actor=actor, action="2fa.verification_failed", details={"method": "totp"})
        return None
    static = StaticDevice.objects.filter(user=user, confirmed=True).first()
    if static is not None and normalise_recovery_code(token) and static.verify_token(hash_recovery_code(token)):
        remaining = static.token_set.count()
        _record_account_event(
            user=user, actor=actor, action="2fa.recovery_code_used", details={"remaining": remaining}
        )
        return static
    _record_account_event(user=user, actor=actor, action="2fa.verification_failed", details={"method": "recovery_code"})
    return None


@transaction.atomic
def workspace_set_require_2fa(*, workspace: Workspace, required: bool, actor: Actor) -> Workspace:
    """Owners require (or stop requiring) a second factor for password logins into their workspace.

    The Owner who switches it on must have 2FA themselves (no one locks themselves out by surprise).
    Password sessions without a second factor lose this workspace on their next request (``access``).
    """
    require_capability(actor, workspace, Cap.SETTINGS_MANAGE)
    workspace = _lock_workspace(workspace)
    if workspace.require_2fa == required:
        return workspace
    if required and actor.kind == "user" and actor.membership is not None and not actor.membership.user.two_factor_enabled:
        raise NotAllowed("Turn on two-factor authentication for your own account before requiring it.")
    workspace.require_2fa = required
    workspace.save(update_fields=["require_2fa"])
    record_event(
        actor=actor, action="workspace.2fa_requirement_changed", workspace=workspace,
        target_type="workspace", target_id=workspace.pk, target_label=workspace.slug,
        details={"before": {"require_2fa": not required}, "after": {"require_2fa": required}},
    )
    return workspace
