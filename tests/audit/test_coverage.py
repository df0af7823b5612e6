"""Every change goes through a service that writes its audit event inside its own transaction.

The walker finds every public function of every ``<app>.services`` module (and the retention
path). Each must be either in FIXTURES (called here with valid arguments; the audit INSERT
must happen while that function's own atomic block is open) or in NOT_A_CHANGE with a reason.
A new service function in neither fails this test: nobody adds an un-audited change.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.apps import apps
from django.conf import settings
from django.db import connection, transaction
from django.db.transaction import Atomic
from django.utils import timezone

from audit.chain import verify_chain
from audit.models import AuditEvent
from audit.record import Actor, AuditOutsideTransaction, record_event
from tests.factories import RepositoryFactory, TeamFactory
from workspaces.models import ApiKey, Membership, RepositoryGrant, TeamMembership

from .helpers import as_actor, frozen_now, record

# Public functions of services modules that change nothing, or only delegate to an audited one.
NOT_A_CHANGE: dict[str, str] = {
    "workspaces.services.actor_for_membership": "builds an Actor; no write",
    "workspaces.services.require_capability": "a check; no write",
    "workspaces.services.hash_secret": "a hash; no write",
    "workspaces.services.user_get_or_create": "creates the global account only inside membership_add, "
    "whose member.created event records new_account",
    "workspaces.services.team_add_member": "delegates to team_add_members (audited)",
    "workspaces.services.team_remove_member": "delegates to team_remove_members (audited)",
    "audit.services.validate_sink_url": "a check; no write",
    "workspaces.services.directory_may_grant_role": "a check; no write",
    "workspaces.services.deprovision_jobs_run": "outbox runner: each job's revocation and its event go through "
    "membership_revoke_credentials (audited); job status is bookkeeping",
    "workspaces.services.deprovision_job_run": "delegates to deprovision_jobs_run",
    "workspaces.services.deprovision_jobs_claim_due": "outbox bookkeeping: pushes due times of unfinished jobs",
    "workspaces.services.user_session_record": "session index written at login (the login itself is audited)",
    "workspaces.services.user_session_forget": "session index entry removed at logout",
}

EXTRA_MODULES = ["audit.retention"]  # the one privileged purge path lives outside services.py


def _owner(w):
    return as_actor(w.owner_a)


def _deprovision_job(w, **fields):
    from workspaces.models import DeprovisionJob

    return DeprovisionJob.objects.create(
        workspace=w.a, user=w.member_a.user, membership=w.member_a, member_label=w.member_a.user.email,
        cause="deactivated", **fields,
    )


def _deactivated_with_key(w):
    ApiKey.objects.create(workspace=w.a, membership=w.member_a, name="laptop", prefix="c0ffee00", key_hash="x" * 64)
    Membership.objects.filter(pk=w.member_a.pk).update(is_active=False, deactivated_at=timezone.now())
    return {"job": _deprovision_job(w, status="running", attempts=1), "actor": Actor.system("deprovisioning")}


def _disabled_user(w):
    user = w.member_a.user
    type(user).objects.filter(pk=user.pk).update(is_active=False)
    user.refresh_from_db()
    return {"user": user, "actor": Actor.system("support")}


def _team(w):
    return TeamFactory(workspace=w.a, name="Platform")


def _team_with_member(w):
    team = _team(w)
    TeamMembership.objects.create(team=team, membership=w.member_a)
    return {"team": team, "memberships": [w.member_a], "actor": _owner(w)}


def _grant(w):
    repo = RepositoryFactory(workspace=w.a, name="libs")
    return {"grant": RepositoryGrant.objects.create(repository=repo, membership=w.member_a), "actor": _owner(w)}


def _scim_credential(w):
    from scim.models import ScimCredential

    cred = ScimCredential.objects.create(workspace=w.a, kind="bearer", name="Okta", key_id="k1", secret_hash="y" * 64)
    return {"credential": cred, "actor": _owner(w)}


def _sink(w):
    from audit.services import audit_sink_create

    with transaction.atomic():
        sink, _ = audit_sink_create(workspace=w.a, name="SIEM", url="https://siem.example.test/in", actor=_owner(w))
    sink.refresh_from_db()
    return sink


def _purge(w):
    with frozen_now(timezone.now() - timedelta(days=400)):
        record(w.a, "member.created")
    return {"workspace": w.a, "actor": Actor.system("retention")}


def _deactivated(w):
    Membership.objects.filter(pk=w.member_a.pk).update(is_active=False)
    w.member_a.refresh_from_db()
    return {"membership": w.member_a, "actor": _owner(w)}


# qualified name -> (kwargs builder, expected action)
FIXTURES: dict[str, tuple[Callable[[Any], dict[str, Any]], str]] = {
    "workspaces.services.workspace_create": (
        lambda w: {"slug": "gamma", "name": "Gamma", "owner": w.owner_a.user, "actor": Actor.system("cli")},
        "workspace.created",
    ),
    "workspaces.services.workspace_update_policy": (
        lambda w: {"workspace": w.a, "actor": _owner(w), "audit_retention_days": 90}, "workspace.settings_changed",
    ),
    "workspaces.services.membership_add": (
        lambda w: {"workspace": w.a, "email": "new@alpha.test", "actor": _owner(w)}, "member.created",
    ),
    "workspaces.services.membership_change_role": (
        lambda w: {"membership": w.member_a, "role": "manager", "actor": _owner(w)}, "member.role_changed",
    ),
    "workspaces.services.membership_set_visibility": (
        lambda w: {"membership": w.member_a, "visibility": "private", "actor": _owner(w)}, "member.visibility_changed",
    ),
    "workspaces.services.membership_set_auditor": (
        lambda w: {"membership": w.member_a, "is_auditor": True, "actor": _owner(w)}, "member.auditor_changed",
    ),
    "workspaces.services.membership_deactivate": (
        lambda w: {"membership": w.member_a, "actor": _owner(w)}, "member.deactivated",
    ),
    "workspaces.services.membership_reactivate": (_deactivated, "member.reactivated"),
    "workspaces.services.membership_remove": (
        lambda w: {"membership": w.member_a, "actor": _owner(w)}, "member.removed",
    ),
    "workspaces.services.membership_record_login": (
        lambda w: {"membership": w.member_a, "actor": as_actor(w.member_a)}, "auth.login_succeeded",
    ),
    "workspaces.services.team_create": (
        lambda w: {"workspace": w.a, "name": "Ops", "actor": _owner(w)}, "team.created",
    ),
    "workspaces.services.team_rename": (
        lambda w: {"team": _team(w), "name": "Platform 2", "actor": _owner(w)}, "team.renamed",
    ),
    "workspaces.services.team_delete": (lambda w: {"team": _team(w), "actor": _owner(w)}, "team.deleted"),
    "workspaces.services.team_add_members": (
        lambda w: {"team": _team(w), "memberships": [w.member_a], "actor": _owner(w)}, "team.member_added",
    ),
    "workspaces.services.team_remove_members": (_team_with_member, "team.member_removed"),
    "workspaces.services.repository_create": (
        lambda w: {"workspace": w.a, "name": "apps", "actor": _owner(w)}, "repository.created",
    ),
    "workspaces.services.repository_grant": (
        lambda w: {"repository": RepositoryFactory(workspace=w.a), "permission": "read", "membership": w.member_a,
                   "actor": _owner(w)},
        "repository.grant_changed",
    ),
    "workspaces.services.repository_revoke_grant": (_grant, "repository.grant_removed"),
    "workspaces.services.api_key_create": (
        lambda w: {"workspace": w.a, "name": "CI", "actor": _owner(w)}, "api_key.created",
    ),
    "workspaces.services.api_key_revoke": (
        lambda w: {"api_key": ApiKey.objects.create(workspace=w.a, name="CI", prefix="abad1dea", key_hash="z" * 64),
                   "actor": _owner(w)},
        "api_key.revoked",
    ),
    "workspaces.services.membership_revoke_credentials": (_deactivated_with_key, "member.credentials_revoked"),
    "workspaces.services.deprovision_job_requeue": (
        lambda w: {"job": _deprovision_job(w, status="failed", attempts=6, last_error="boom"),
                   "actor": Actor.system("support")},
        "member.deprovisioning_requeued",
    ),
    "workspaces.services.user_disable": (
        lambda w: {"user": w.member_a.user, "actor": Actor.system("support"), "reason": "ticket"}, "user.disabled",
    ),
    "workspaces.services.user_enable": (_disabled_user, "user.enabled"),
    "scim.services.scim_credential_create": (
        lambda w: {"workspace": w.a, "kind": "bearer", "name": "Okta", "actor": _owner(w)}, "scim.credential_created",
    ),
    "scim.services.scim_credential_revoke": (_scim_credential, "scim.credential_revoked"),
    "scim.services.scim_credential_rotate": (_scim_credential, "scim.credential_rotated"),
    "scim.services.scim_oauth_client_create": (
        lambda w: {"workspace": w.a, "name": "Okta OAuth", "actor": _owner(w),
                   "redirect_uris": "https://system-admin.okta.example/admin/app/cpc/callback"},
        "scim.credential_created",
    ),
    "workspaces.services.membership_update_profile": (
        lambda w: {"membership": w.member_a, "changes": {"given_name": "Milo", "external_id": "00u1"}, "actor": _owner(w)},
        "member.profile_changed",
    ),
    "workspaces.services.team_update_external_id": (
        lambda w: {"team": _team(w), "external_id": "00g1", "actor": _owner(w)}, "team.external_id_changed",
    ),
    "scim.services.scim_set_enabled": (
        lambda w: {"workspace": w.a, "enabled": True, "actor": _owner(w)}, "scim.enabled",
    ),
    "audit.services.audit_sink_create": (
        lambda w: {"workspace": w.a, "name": "Splunk", "url": "https://siem.example.test/in", "actor": _owner(w)},
        "audit.sink_created",
    ),
    "audit.services.audit_sink_update": (
        lambda w: {"sink": _sink(w), "is_active": False, "actor": _owner(w)}, "audit.sink_updated",
    ),
    "audit.services.audit_sink_delete": (lambda w: {"sink": _sink(w), "actor": _owner(w)}, "audit.sink_deleted"),
    "audit.services.audit_log_export": (
        lambda w: {"workspace": w.a, "actor": as_actor(w.manager_a), "export_format": "csv",
                   "filters": {"action": "member.*"}},
        "audit.exported",
    ),
    "audit.services.audit_verification_record": (
        lambda w: {"workspace": w.a, "report": verify_chain(w.a.pk), "actor": Actor.system("verifier")},
        "audit.chain_verified",
    ),
    "audit.retention.audit_log_purge": (_purge, "audit.purged"),
}


def _project_service_modules() -> list[str]:
    base = Path(settings.BASE_DIR).resolve()
    names = []
    for config in apps.get_app_configs():
        if not Path(config.path).resolve().is_relative_to(base):
            continue  # Django's and libraries' apps
        module = f"{config.name}.services"
        if importlib.util.find_spec(module) is not None:
            names.append(module)
    return sorted(names) + EXTRA_MODULES


def _public_functions() -> dict[str, Callable]:
    found = {}
    for module_name in _project_service_modules():
        module = importlib.import_module(module_name)
        for name, obj in vars(module).items():
            if name.startswith("_") or not inspect.isfunction(obj) or obj.__module__ != module_name:
                continue
            found[f"{module_name}.{name}"] = obj
    return found


def _atomic_of(fn: Callable) -> Atomic | None:
    """The Atomic a ``@transaction.atomic`` function opens (ContextDecorator keeps it in the closure)."""
    for cell in getattr(fn, "__closure__", None) or ():
        if isinstance(cell.cell_contents, Atomic):
            return cell.cell_contents
    return None


def _uncovered() -> list[str]:
    return sorted(set(_public_functions()) - set(FIXTURES) - set(NOT_A_CHANGE))


def test_every_public_service_function_is_either_audited_here_or_declared_not_a_change():
    functions = _public_functions()
    assert "workspaces.services.membership_change_role" in functions  # the walker walks
    unknown = _uncovered()
    assert not unknown, (
        "New service function(s) without an audit coverage entry: "
        f"{unknown}. Add each to FIXTURES in tests/audit/test_coverage.py (valid arguments + the action it records), "
        "or to NOT_A_CHANGE if it really changes nothing."
    )
    stale = sorted((set(FIXTURES) | set(NOT_A_CHANGE)) - set(functions))
    assert not stale, f"Coverage entries for functions that no longer exist: {stale}"


def test_a_new_service_function_without_a_coverage_entry_is_caught(monkeypatch):
    import workspaces.services as services

    @transaction.atomic
    def team_archive(*, team, actor):  # a change someone forgot to audit
        team.save()

    team_archive.__module__ = "workspaces.services"
    monkeypatch.setattr(services, "team_archive", team_archive, raising=False)
    assert _uncovered() == ["workspaces.services.team_archive"]


def test_every_audited_service_function_is_atomic_and_named_entity_verb():
    functions = _public_functions()
    for name in FIXTURES:
        fn = functions[name]
        assert _atomic_of(fn) is not None, f"{name} must be decorated with @transaction.atomic"
        assert "_" in fn.__name__, f"{name} must be named <entity>_<verb>"
        params = inspect.signature(fn).parameters.values()
        assert all(p.kind is inspect.Parameter.KEYWORD_ONLY or p.kind is inspect.Parameter.VAR_KEYWORD for p in params), (
            f"{name} must take keyword-only arguments"
        )


@pytest.mark.parametrize("qualname", sorted(FIXTURES))
def test_service_function_records_its_event_inside_its_own_transaction(qualname, world):
    fn = _public_functions()[qualname]
    build, action = FIXTURES[qualname]
    kwargs = build(world)
    service_block = _atomic_of(fn)
    seen: list[bool] = []

    def watch(execute, sql, params, many, context):
        table = AuditEvent._meta.db_table
        if f"INSERT INTO {table} " in sql or f'INSERT INTO "{table}"' in sql:
            seen.append(service_block in connection.atomic_blocks)
        return execute(sql, params, many, context)

    before = AuditEvent.objects.filter(action=action).count()
    with connection.execute_wrapper(watch):
        fn(**kwargs)
    assert AuditEvent.objects.filter(action=action).count() > before, f"{qualname} recorded no {action!r} event"
    assert seen and all(seen), f"{qualname} wrote an audit event outside its own transaction block"


def test_record_event_outside_a_transaction_raises(transactional_db):
    assert not connection.in_atomic_block
    with pytest.raises(AuditOutsideTransaction):
        record_event(actor=Actor.system(), action="test.outside")
    assert not AuditEvent.objects.filter(action="test.outside").exists()


def test_a_rolled_back_change_leaves_no_event_and_no_change(world):
    from workspaces.services import membership_change_role

    class Boom(Exception):
        pass

    with pytest.raises(Boom), transaction.atomic():
        membership_change_role(membership=world.member_a, role="manager", actor=as_actor(world.owner_a))
        assert AuditEvent.objects.filter(action="member.role_changed").exists()  # written inside...
        raise Boom  # ...and a later step of the same transaction fails
    world.member_a.refresh_from_db()
    assert world.member_a.role == "member"
    assert not AuditEvent.objects.filter(action="member.role_changed").exists()
    assert verify_chain(world.a.pk).ok


def test_a_refused_change_records_nothing(world):
    from workspaces.exceptions import LastOwnerError
    from workspaces.services import membership_change_role

    with pytest.raises(LastOwnerError):
        membership_change_role(membership=world.owner_a, role="member", actor=as_actor(world.owner_a))
    assert not AuditEvent.objects.filter(action="member.role_changed").exists()
