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
import pkgutil
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
from tests.workspaces.test_two_factor import code, enrol
from workspaces.models import ApiKey, Membership, RepositoryGrant, TeamMembership
from workspaces.roles import ApiScope
from workspaces.services import two_factor_enrol_start, user_actor

from .helpers import as_actor, frozen_now, record

# Public functions of services modules that change nothing, or only delegate to an audited one.
NOT_A_CHANGE: dict[str, str] = {
    "workspaces.services.actor_for_membership": "builds an Actor; no write",
    "workspaces.services.require_capability": "a check; no write",
    "workspaces.credentials.hash_secret": "a hash; no write",
    "workspaces.services.user_get_or_create": "creates the global account only inside membership_add, "
    "whose member.created event records new_account",
    "workspaces.services.team_add_member": "delegates to team_add_members (audited)",
    "workspaces.services.team_remove_member": "delegates to team_remove_members (audited)",
    "audit.services.validate_sink_url": "a check; no write",
    "workspaces.services.directory_may_grant_role": "a check; no write",
    "saml.services.safe_next": "returns the target if it is a local path, else ''; pure, no write",
    "saml.services.saml_actor": "builds the system Actor for IdP-driven changes; no write",
    "saml.services.authn_request_issue": "writes only protocol state: a pending AuthnRequest row (expires after "
    "SAML_AUTHN_REQUEST_TTL, purged by purge_expired) for an unauthenticated GET; nothing a person sees changes, "
    "and what it leads to is audited (sso_login_complete, sso_test_complete, sso_login_failed_record)",
    "saml.services.purge_expired": "housekeeping of expired protocol state, no user-visible change: it deletes "
    "AuthnRequests expired over a day ago (no longer answerable) and replay rows past their expires_at (which is "
    "the assertion's last NotOnOrAfter plus skew, after which the ACS refuses it as expired anyway)",
    # connector API / 2FA (issue 5)
    "workspaces.services.user_actor": "builds an Actor; no write",
    "workspaces.services.normalise_recovery_code": "pure string normalisation; no write",
    "workspaces.services.hash_recovery_code": "a hash of a recovery code; no write",
    "workspaces.services.confirmed_totp_device": "a read (the user's confirmed TOTP device); no write",
    "workspaces.services.two_factor_enrol_start": "writes only a pending, unconfirmed TOTPDevice (not a factor, opens "
    "nothing; reused on repeat calls); deliberately unaudited per its docstring and takes no actor. The change it "
    "prepares is audited by two_factor_enrol_confirm (2fa.enabled)",
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


def _pending_totp(w):
    user = w.member_a.user
    device = two_factor_enrol_start(user=user)
    return {"user": user, "device_id": device.pk, "token": code(device), "actor": user_actor(user, "password")}


def _enrolled(w):
    user = w.member_a.user
    enrol(user)
    return {"user": user, "actor": user_actor(user, "password")}


def _enrolled_with_recovery_code(w):
    user = w.member_a.user
    _, codes = enrol(user)
    return {"user": user, "token": codes[0], "actor": user_actor(user, "password")}


def _owner_with_2fa(w):
    enrol(w.owner_a.user)
    return {"workspace": w.a, "required": True, "actor": _owner(w)}


def _readable_repository(w):
    repo = RepositoryFactory(workspace=w.a, name="libs")
    RepositoryGrant.objects.create(repository=repo, membership=w.member_a, permission="read")
    return {"membership": w.member_a, "repository_name": "libs", "action": "pull",
            "actor": as_actor(w.member_a, "api_key")}


def _deactivated(w):
    Membership.objects.filter(pk=w.member_a.pk).update(is_active=False)
    w.member_a.refresh_from_db()
    return {"membership": w.member_a, "actor": _owner(w)}


def _sso(w):
    """Workspace A's IdP, configured the way tests/saml does it (real metadata, a real signing key)."""
    from tests.saml.conftest import IDP_A, Sso, configure
    from tests.saml.idp import make_key

    key = make_key("idp-alpha")
    return Sso(w.a, configure(w.a, w.owner_a, IDP_A, key, email_domains=["alpha.test"]), IDP_A, key)


def _metadata(w):
    from tests.saml.conftest import IDP_A
    from tests.saml.idp import idp_metadata, make_key

    return {"workspace": w.a, "actor": _owner(w), "email_domains": ["alpha.test"],
            "metadata_xml": idp_metadata(IDP_A, "https://idp.test/alpha/sso", make_key("idp-alpha"))}


def _metadata_refresh_failing(w):
    """A metadata URL the fetcher refuses before any network (http:// without DEBUG): the audited failure path."""
    from saml.models import SamlSettings

    cfg = _sso(w).cfg
    SamlSettings.objects.filter(pk=cfg.pk).update(metadata_url="http://idp.test/alpha/metadata")
    return {"settings_id": cfg.pk, "actor": Actor.system("metadata refresh")}


def _verified_login(w, *, email: str, purpose: str = "login", user=None):
    """A real signed response to an AuthnRequest the portal issued, through the hardened ACS verifier."""
    from saml.acs import verify_response
    from saml.models import IssuedAuthnRequest
    from saml.services import authn_request_issue

    sso = _sso(w)
    authn_request_issue(workspace=w.a, cfg=sso.cfg, purpose=purpose, user=user)
    request_id = IssuedAuthnRequest.objects.filter(workspace=w.a).latest("created_at").request_id
    login = verify_response(cfg=sso.cfg, slug=w.a.slug, workspace_id=w.a.pk,
                            saml_response=sso.response(name_id=email, in_response_to=request_id))
    return {"workspace": w.a, "cfg": sso.cfg, "login": login}


def _group_sync(w):
    from saml.models import GroupMapping, SamlMemberState

    cfg = _sso(w).cfg
    GroupMapping.objects.create(workspace=w.a, idp_group="eng", team=_team(w))
    state = SamlMemberState.objects.create(membership=w.member_a)
    return {"membership": w.member_a, "groups": ["eng"], "state": state, "cfg": cfg}


def _group_mapping(w):
    from saml.models import GroupMapping

    return {"mapping": GroupMapping.objects.create(workspace=w.a, idp_group="eng", team=_team(w)), "actor": _owner(w)}


def _tested_sso(w):
    """SSO set up and a successful Test SSO by the Owner just now (what enforcing SAML-only requires)."""
    from saml.models import SamlSettings

    cfg = _sso(w).cfg
    SamlSettings.objects.filter(pk=cfg.pk).update(last_test_succeeded_at=timezone.now(), last_test_by=w.owner_a.user)
    return {"workspace": w.a, "actor": _owner(w), "enabled": True}


def _saml_only(w) -> list[str]:
    from saml.services import saml_only_set

    codes = saml_only_set(**_tested_sso(w))
    w.a.refresh_from_db()
    return codes


def _enforced(w):
    _saml_only(w)
    return {"workspace": w.a, "actor": _owner(w)}


def _break_glass_use(w):
    codes = _saml_only(w)
    return {"workspace": w.a, "user": w.owner_a.user, "code": codes[0]}


def _login_failure(w):
    from saml.acs import AcsFailure

    return {"workspace": w.a, "email": "member@alpha.test",
            "failure": AcsFailure("signature_invalid", "InvalidSignature")}


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
        lambda w: {"workspace": w.a, "name": "CI", "scopes": [ApiScope.MEMBERS_READ], "actor": _owner(w)},
        "api_key.created",
    ),
    "workspaces.services.api_key_revoke": (
        lambda w: {"api_key": ApiKey.objects.create(workspace=w.a, name="CI", prefix="abad1dea", key_hash="z" * 64),
                   "actor": _owner(w)},
        "api_key.revoked",
    ),
    "workspaces.services.membership_revoke_credentials": (_deactivated_with_key, "member.credentials_revoked"),
    # connector API / 2FA (issue 5)
    "workspaces.services.two_factor_enrol_confirm": (_pending_totp, "2fa.enabled"),
    "workspaces.services.two_factor_disable": (_enrolled, "2fa.disabled"),
    "workspaces.services.two_factor_recovery_codes_regenerate": (_enrolled, "2fa.recovery_codes_regenerated"),
    "workspaces.services.two_factor_verify": (_enrolled_with_recovery_code, "2fa.recovery_code_used"),
    "workspaces.services.workspace_set_require_2fa": (_owner_with_2fa, "workspace.2fa_requirement_changed"),
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
    "saml.services.saml_settings_save": (_metadata, "sso.settings_changed"),
    "saml.services.saml_metadata_refresh": (_metadata_refresh_failing, "sso.metadata_refresh_failed"),
    "saml.services.sso_login_complete": (
        lambda w: _verified_login(w, email="member@alpha.test"), "sso.login_succeeded",
    ),
    "saml.services.sso_test_complete": (
        lambda w: _verified_login(w, email="owner@alpha.test", purpose="test", user=w.owner_a.user),
        "sso.test_succeeded",
    ),
    "saml.services.sso_login_failed_record": (_login_failure, "sso.login_failed"),
    "saml.services.group_sync_apply": (_group_sync, "team.member_added"),
    "saml.services.group_sync_set": (
        lambda w: {"workspace": _sso(w).workspace, "actor": _owner(w), "enabled": True}, "sso.group_sync_changed",
    ),
    "saml.services.group_mapping_create": (
        lambda w: {"workspace": w.a, "actor": _owner(w), "idp_group": "eng", "team": _team(w)},
        "sso.group_mapping_created",
    ),
    "saml.services.group_mapping_delete": (_group_mapping, "sso.group_mapping_deleted"),
    "saml.services.saml_only_set": (_tested_sso, "sso.enforcement_changed"),
    "saml.services.break_glass_codes_regenerate": (_enforced, "sso.break_glass_codes_regenerated"),
    "saml.services.break_glass_use": (_break_glass_use, "sso.break_glass_used"),
    "saml.services.break_glass_failed_record": (
        lambda w: {"workspace": w.a, "email": "owner@alpha.test", "reason": "That recovery code is not valid."},
        "sso.break_glass_failed",
    ),
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
    """Public functions of each services module; for a services package, those its ``__init__`` exports
    and those defined in its public modules, all named ``<app>.services.<function>``."""
    found = {}
    for module_name in _project_service_modules():
        module = importlib.import_module(module_name)
        modules = [module]
        if hasattr(module, "__path__"):  # a package: walk its modules too (a function it forgot to export counts)
            modules += [
                importlib.import_module(info.name)
                for info in pkgutil.walk_packages(module.__path__, f"{module_name}.")
                if not info.name.rsplit(".", 1)[-1].startswith("_")
            ]
        for inner in modules:
            for name, obj in vars(inner).items():
                if name.startswith("_") or not inspect.isfunction(obj):
                    continue
                exported = inner is module and obj.__module__.startswith(f"{module_name}.")
                if obj.__module__ != inner.__name__ and not exported:
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
    return sorted(set(_public_functions()) - set(FIXTURES) - set(NOT_A_CHANGE) - set(DECISIONS))


def test_every_public_service_function_is_either_audited_here_or_declared_not_a_change():
    functions = _public_functions()
    assert "workspaces.services.membership_change_role" in functions  # the walker walks
    unknown = _uncovered()
    assert not unknown, (
        "New service function(s) without an audit coverage entry: "
        f"{unknown}. Add each to FIXTURES in tests/audit/test_coverage.py (valid arguments + the action it records), "
        "or to NOT_A_CHANGE if it really changes nothing."
    )
    stale = sorted((set(FIXTURES) | set(NOT_A_CHANGE) | set(DECISIONS)) - set(functions))
    assert not stale, f"Coverage entries for functions that no longer exist: {stale}"


def test_a_new_service_function_without_a_coverage_entry_is_caught(monkeypatch):
    import workspaces.services as services

    @transaction.atomic
    def team_archive(*, team, actor):  # a change someone forgot to audit
        team.save()

    team_archive.__module__ = "workspaces.services"
    monkeypatch.setattr(services, "team_archive", team_archive, raising=False)
    assert _uncovered() == ["workspaces.services.team_archive"]


def test_a_new_function_in_a_services_package_module_is_caught_even_if_not_exported(monkeypatch):
    import saml.services.login as login

    @transaction.atomic
    def sso_session_extend(*, membership, actor):  # a change someone forgot to audit (and to export)
        membership.save()

    sso_session_extend.__module__ = "saml.services.login"
    monkeypatch.setattr(login, "sso_session_extend", sso_session_extend, raising=False)
    assert _uncovered() == ["saml.services.sso_session_extend"]


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


# Public service functions that decide and change nothing: the event is their only write, appended by
# audit.record.record_decision as one self-committing statement (no transaction to pair it with).
DECISIONS: dict[str, tuple[Callable[[Any], dict[str, Any]], str]] = {
    "workspaces.services.package_access_check": (_readable_repository, "package.pulled"),
}


@pytest.mark.parametrize("qualname", sorted(DECISIONS))
def test_a_decision_records_its_event_durably_before_it_returns(qualname, transactional_db, world):
    """Outside any transaction the event is committed by the time the answer is returned: another
    connection sees it, and no transaction is left open."""
    import threading

    fn = _public_functions()[qualname]
    assert _atomic_of(fn) is None, f"{qualname} changes nothing; it must not hold a transaction open"
    build, action = DECISIONS[qualname]
    kwargs = build(world)
    before = AuditEvent.objects.filter(action=action).count()
    fn(**kwargs)
    assert not connection.in_atomic_block
    seen: list[int] = []

    def other_connection() -> None:
        from django.db import connections

        try:
            seen.append(AuditEvent.objects.filter(action=action).count())
        finally:
            connections.close_all()

    t = threading.Thread(target=other_connection)
    t.start()
    t.join()
    assert seen == [before + 1], f"{qualname} did not commit its {action!r} event before returning"


@pytest.mark.parametrize("qualname", sorted(DECISIONS))
def test_a_decision_inside_a_callers_transaction_rolls_back_with_it(qualname, world):
    fn = _public_functions()[qualname]
    build, action = DECISIONS[qualname]
    kwargs = build(world)
    before = AuditEvent.objects.filter(action=action).count()
    with pytest.raises(RuntimeError), transaction.atomic():
        fn(**kwargs)
        assert AuditEvent.objects.filter(action=action).count() == before + 1
        raise RuntimeError("the caller's change failed")
    assert AuditEvent.objects.filter(action=action).count() == before


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
