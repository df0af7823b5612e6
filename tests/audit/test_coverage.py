"""Every change goes through a service that writes its audit event inside its own transaction.

The walker finds every public function defined in every ``services`` or ``deprovisioning`` module of
every app, or in any module of a package of that name (``workspaces/services/memberships.py``), at
any depth, and the retention path. Each must be either in FIXTURES (called here with valid arguments;
the audit INSERT must happen while that function's own atomic block is open) or in NOT_A_CHANGE with
a reason. A new service function in neither fails this test: nobody adds an un-audited change.

Entries are keyed ``app.function`` (``workspaces.membership_change_role``), so moving a function
between the modules of its app needs no change here; a full dotted path is accepted too, and is
needed only if two functions of one app share a name.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import sys
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
from workspaces.services import api_key_create, two_factor_enrol_start, user_actor

from .helpers import as_actor, frozen_now, record

# Public functions of services modules that change nothing, or only delegate to an audited one.
NOT_A_CHANGE: dict[str, str] = {
    "saml.saml_metadata_preview": "parses the metadata to show it before saving; no write",
    "saml.break_glass_codes_prepared": "reads the codes back from a prepare token; no write",
    "saml.break_glass_codes_prepare": "makes codes to show before enforcement and stores nothing; saml_only_set stores"
                                      " them and records sso.enforcement_changed",
    "workspaces.invitation_url": "builds the link of a token; no write",
    "workspaces.user_get_or_create": "creates the global account only inside membership_add, "
    "whose member.created event records new_account",
    "workspaces.team_add_member": "delegates to team_add_members (audited)",
    "workspaces.team_remove_member": "delegates to team_remove_members (audited)",
    "audit.validate_sink_url": "a check; no write",
    "workspaces.directory_may_grant_role": "a check; no write",
    "saml.safe_next": "returns the target if it is a local path, else ''; pure, no write",
    "saml.authn_request_issue": "writes only protocol state: a pending AuthnRequest row (expires after "
    "SAML_AUTHN_REQUEST_TTL, purged by purge_expired) for an unauthenticated GET; nothing a person sees changes, "
    "and what it leads to is audited (sso_login_complete, sso_test_complete, sso_login_failed_record)",
    "saml.purge_expired": "housekeeping of expired protocol state, no user-visible change: it deletes "
    "AuthnRequests expired over a day ago (no longer answerable) and replay rows past their expires_at (which is "
    "the assertion's last NotOnOrAfter plus skew, after which the ACS refuses it as expired anyway)",
    # connector API / 2FA (issue 5)
    "workspaces.user_actor": "builds an Actor; no write",
    "workspaces.role_map": "a read of the workspace's role mapping; no write",
    "workspaces.accepted_role_values": "a read of the values the role mapping accepts; no write",
    "workspaces.resolve_idp_role": "a lookup of the role an IdP value gives; no write",
    "workspaces.role_map_key": "normalises a value; pure, no write",
    "saml.break_glass_retry_after": "a check of the failure counters; no write",
    "workspaces.normalise_recovery_code": "pure string normalisation; no write",
    "workspaces.hash_recovery_code": "a hash of a recovery code; no write",
    "workspaces.confirmed_totp_device": "a read (the user's confirmed TOTP device); no write",
    "workspaces.two_factor_enrol_start": "writes only a pending, unconfirmed TOTPDevice (not a factor, opens "
    "nothing; reused on repeat calls); deliberately unaudited per its docstring and takes no actor. The change it "
    "prepares is audited by two_factor_enrol_confirm (2fa.enabled)",
    "workspaces.deprovision_jobs_run": "outbox runner: each job's revocation and its event go through "
    "membership_revoke_credentials (audited); job status is bookkeeping",
    "workspaces.deprovision_job_add": "writes the outbox row inside its caller's transaction, which "
    "records the change (membership_deactivate, membership_remove, user_disable)",
    "workspaces.revoke_and_record": "the batch form of membership_revoke_credentials, run inside the "
    "runner's transaction; it records member.credentials_revoked per job",
    "workspaces.enqueue_deprovision_jobs": "publishes job ids to the broker; no database write",
    "workspaces.enqueue_new_deprovision_job": "publishes a job id (coalesced); no database write",
    "workspaces.deprovision_jobs_claim_due": "outbox bookkeeping: pushes due times of unfinished jobs",
    "workspaces.domain_claim_verify": "looks the TXT record up in DNS outside any transaction (a slow DNS server "
    "must hold no row lock or chain head), then delegates to domain_claim_record_check (audited)",
    "workspaces.domain_claims_recheck": "the periodic job: delegates to domain_claims_expire and, one transaction "
    "per claim, domain_claim_record_check (both audited)",
    "workspaces.user_session_record": "session index written at login (the login itself is audited)",
    "workspaces.user_session_forget": "session index entry removed at logout",
    # field-readiness round (issues 13, 14)
    "saml.asserted_role": "a lookup of the role the assertion's role attribute gives; no write",
    "saml.login_subject": "reads the immutable subject from a verified login; no write",
    "saml.verify_login_response": "verification only (saml.acs.verify_response against the live or the staged "
    "IdP); its outcome is audited by sso_login_complete, sso_test_complete or sso_login_failed_record",
    "saml.needs_staging": "a check; no write",
    "saml.pending_summary": "a read for the settings page; no write",
    "saml.settings_with_pending": "an unsaved copy of the settings with the staged IdP; no write",
}

# In every app, at any depth: a module of this name, or every module of a package of this name.
SERVICE_PACKAGES = ("services", "deprovisioning")
EXTRA_MODULES = ["audit.retention"]  # the one privileged purge path lives outside services


def _owner(w):
    return as_actor(w.owner_a)


def _domain_claim(w, **fields):
    from workspaces.models import DomainClaim

    return DomainClaim.objects.create(workspace=w.a, domain="bigcorp.test", token="0" * 32,
                                      expires_at=timezone.now() + timedelta(days=7), **fields)


def _domain_claim_found(w):
    from workspaces.domains import Lookup

    return {"claim": _domain_claim(w), "lookup": Lookup(found=True), "actor": _owner(w)}


def _domain_claim_expired(w):
    _domain_claim(w)
    return {"actor": Actor.system("domain verification"), "now": timezone.now() + timedelta(days=8)}


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


def _personal_key(w):
    key, _ = api_key_create(workspace=w.a, membership=w.member_a, name="laptop", actor=Actor.system("test set-up"))
    return {"api_key": key}


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


def _role_from_idp(w) -> dict[str, Any]:
    from saml.models import SamlMemberState
    from saml.services import saml_actor

    state = SamlMemberState.objects.create(membership=w.member_a)
    return {"membership": w.member_a, "role": "manager", "state": state, "actor": saml_actor("SAML role attribute")}


def _sp_key(w, *, rollover: int = 0) -> dict[str, Any]:
    """Workspace A's IdP with an active SP key; each rollover step prepares (1), then activates (2) a next key."""
    from saml.services import sp_key_activate, sp_key_prepare

    _sso(w)
    sp_key_prepare(workspace=w.a, actor=_owner(w))
    if rollover >= 1:
        sp_key_prepare(workspace=w.a, actor=_owner(w))
    if rollover >= 2:
        sp_key_activate(workspace=w.a, actor=_owner(w))
    return {"workspace": w.a, "actor": _owner(w)}


def _staged_idp(w) -> Any:
    from saml.models import SamlSettings
    from tests.saml.idp import idp_metadata, make_key

    cfg = _sso(w).cfg
    key = make_key("idp-new")
    xml = idp_metadata("http://idp.new/entity", "https://idp.new/sso", key)
    SamlSettings.objects.filter(pk=cfg.pk).update(pending_idp={
        "metadata_xml": xml, "metadata_url": "", "entity_id": "http://idp.new/entity",
        "sso_urls": [{"binding": "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect", "location": "https://idp.new/sso"}],
        "certificates": [key.cert_b64], "staged_at": "", "staged_by": "test"})
    return SamlSettings.objects.get(pk=cfg.pk)


def _scim_linked(w):
    from workspaces.models import Membership

    Membership.objects.filter(pk=w.member_a.pk).update(scim_username="member@alpha.test")
    w.member_a.refresh_from_db()
    return {"membership": w.member_a, "actor": _owner(w)}


# qualified name -> (kwargs builder, expected action)
def _with_role_mapping(w) -> dict[str, Any]:
    from workspaces.models import RoleMapping

    RoleMapping.objects.create(workspace=w.a, value="admin", value_key="admin", role="manager")
    return {"workspace": w.a, "values": ["admin"], "actor": _owner(w)}


def _invitation(w):
    """Workspace A invites workspace B's Owner (an existing account): a pending member and its open invitation."""
    from workspaces.services import membership_add

    membership = membership_add(workspace=w.a, email=w.outsider_b.user.email, actor=_owner(w))
    return membership.invitations.get()


def _review(w, decision: str = ""):
    from workspaces.services import access_review_start

    review = access_review_start(workspace=w.a, actor=_owner(w), name="Q3 review", scope_kind="workspace")
    if decision:
        review.items.update(decision=decision)
    return review


def _review_item(w):
    return {"item": _review(w).items.first(), "decision": "keep", "actor": _owner(w)}


def _review_items(w):
    review = _review(w)
    return {"review": review, "decisions": {i.pk: ("keep", "") for i in review.items.all()[:2]}, "actor": _owner(w)}


FIXTURES: dict[str, tuple[Callable[[Any], dict[str, Any]], str]] = {
    "workspaces.invitation_issue": (lambda w: {"membership": w.member_a, "actor": _owner(w)}, "member.invited"),
    "workspaces.invitation_resend": (
        lambda w: {"invitation": _invitation(w), "actor": _owner(w)}, "member.invitation_resent",
    ),
    "workspaces.invitation_revoke": (
        lambda w: {"invitation": _invitation(w), "actor": _owner(w)}, "member.invitation_revoked",
    ),
    "workspaces.invitation_accept": (
        lambda w: {"invitation": _invitation(w), "user": w.outsider_b.user}, "member.invitation_accepted",
    ),
    "workspaces.workspace_create": (
        lambda w: {"slug": "gamma", "name": "Gamma", "owner": w.owner_a.user, "actor": Actor.system("cli")},
        "workspace.created",
    ),
    "workspaces.workspace_update_policy": (
        lambda w: {"workspace": w.a, "actor": _owner(w), "audit_retention_days": 90}, "workspace.settings_changed",
    ),
    "workspaces.membership_add": (
        lambda w: {"workspace": w.a, "email": "new@alpha.test", "actor": _owner(w)}, "member.created",
    ),
    "workspaces.membership_change_role": (
        lambda w: {"membership": w.member_a, "role": "manager", "actor": _owner(w)}, "member.role_changed",
    ),
    "workspaces.entitlement_grant": (
        lambda w: {"workspace": w.a, "entitlement": "role:manager", "member": w.member_a, "actor": _owner(w)},
        "member.role_changed",
    ),
    "workspaces.entitlement_revoke": (
        lambda w: {"workspace": w.a, "entitlement": "role:manager", "member": w.manager_a, "actor": _owner(w)},
        "member.role_changed",
    ),
    "workspaces.access_review_start": (
        lambda w: {"workspace": w.a, "name": "Q3 review", "scope_kind": "workspace", "actor": _owner(w)},
        "access_review.started",
    ),
    "workspaces.access_review_decide": (_review_item, "access_review.decided"),
    "workspaces.access_review_decide_many": (_review_items, "access_review.decided"),
    "workspaces.access_review_complete": (
        lambda w: {"review": _review(w, decision="keep"), "actor": _owner(w)}, "access_review.completed",
    ),
    "workspaces.membership_set_visibility": (
        lambda w: {"membership": w.member_a, "visibility": "private", "actor": _owner(w)}, "member.visibility_changed",
    ),
    "workspaces.membership_set_auditor": (
        lambda w: {"membership": w.member_a, "is_auditor": True, "actor": _owner(w)}, "member.auditor_changed",
    ),
    "workspaces.membership_deactivate": (
        lambda w: {"membership": w.member_a, "actor": _owner(w)}, "member.deactivated",
    ),
    "workspaces.membership_reactivate": (_deactivated, "member.reactivated"),
    "workspaces.membership_remove": (
        lambda w: {"membership": w.member_a, "actor": _owner(w)}, "member.removed",
    ),
    "workspaces.membership_record_login": (
        lambda w: {"membership": w.member_a, "actor": as_actor(w.member_a)}, "auth.login_succeeded",
    ),
    "workspaces.team_create": (
        lambda w: {"workspace": w.a, "name": "Ops", "actor": _owner(w)}, "team.created",
    ),
    "workspaces.team_rename": (
        lambda w: {"team": _team(w), "name": "Platform 2", "actor": _owner(w)}, "team.renamed",
    ),
    "workspaces.team_delete": (lambda w: {"team": _team(w), "actor": _owner(w)}, "team.deleted"),
    "workspaces.team_add_members": (
        lambda w: {"team": _team(w), "memberships": [w.member_a], "actor": _owner(w)}, "team.member_added",
    ),
    "workspaces.team_remove_members": (_team_with_member, "team.member_removed"),
    "workspaces.repository_create": (
        lambda w: {"workspace": w.a, "name": "apps", "actor": _owner(w)}, "repository.created",
    ),
    "workspaces.repository_grant": (
        lambda w: {"repository": RepositoryFactory(workspace=w.a), "permission": "read", "membership": w.member_a,
                   "actor": _owner(w)},
        "repository.grant_changed",
    ),
    "workspaces.repository_revoke_grant": (_grant, "repository.grant_removed"),
    "workspaces.api_key_create": (
        lambda w: {"workspace": w.a, "name": "CI", "scopes": [ApiScope.MEMBERS_READ], "actor": _owner(w)},
        "api_key.created",
    ),
    "workspaces.api_key_revoke": (
        lambda w: {"api_key": ApiKey.objects.create(workspace=w.a, name="CI", prefix="abad1dea", key_hash="z" * 64),
                   "actor": _owner(w)},
        "api_key.revoked",
    ),
    "workspaces.membership_revoke_credentials": (_deactivated_with_key, "member.credentials_revoked"),
    # connector API / 2FA (issue 5)
    "workspaces.two_factor_enrol_confirm": (_pending_totp, "2fa.enabled"),
    "workspaces.two_factor_disable": (_enrolled, "2fa.disabled"),
    "workspaces.two_factor_recovery_codes_regenerate": (_enrolled, "2fa.recovery_codes_regenerated"),
    "workspaces.two_factor_verify": (_enrolled_with_recovery_code, "2fa.recovery_code_used"),
    "workspaces.workspace_set_require_2fa": (_owner_with_2fa, "workspace.2fa_requirement_changed"),
    "workspaces.workspace_set_session_max_age": (
        lambda w: {"workspace": w.a, "max_age": 3600, "actor": _owner(w)}, "workspace.session_lifetime_changed"
    ),
    "workspaces.role_map_set": (
        lambda w: {"workspace": w.a, "mappings": {"admin": "manager"}, "actor": _owner(w)}, "workspace.role_map_changed"
    ),
    "workspaces.role_map_remove": (_with_role_mapping, "workspace.role_map_changed"),
    "workspaces.role_map_set_unknown": (
        lambda w: {"workspace": w.a, "policy": "default", "actor": _owner(w)}, "workspace.role_map_changed"
    ),
    "workspaces.role_map_apply_preset": (
        lambda w: {"workspace": w.a, "preset": "cloudinary", "actor": _owner(w)}, "workspace.role_map_changed"
    ),
    "workspaces.workspace_set_api_key_sso_window": (
        lambda w: {"workspace": w.a, "window": 86400, "actor": _owner(w)}, "workspace.api_key_sso_window_changed"
    ),
    "workspaces.workspace_sign_everyone_out": (
        lambda w: {"workspace": w.a, "actor": _owner(w)}, "workspace.signed_everyone_out"
    ),
    "workspaces.deprovision_job_requeue": (
        lambda w: {"job": _deprovision_job(w, status="failed", attempts=6, last_error="boom"),
                   "actor": Actor.system("support")},
        "member.deprovisioning_requeued",
    ),
    "workspaces.user_disable": (
        lambda w: {"user": w.member_a.user, "actor": Actor.system("support"), "reason": "ticket"}, "user.disabled",
    ),
    "workspaces.user_enable": (_disabled_user, "user.enabled"),
    "workspaces.domain_claim_add": (
        lambda w: {"workspace": w.a, "domain": "bigcorp.test", "actor": _owner(w)}, "domain.claimed",
    ),
    "workspaces.domain_claim_record_check": (_domain_claim_found, "domain.verified"),
    "workspaces.domain_claim_remove": (lambda w: {"claim": _domain_claim(w), "actor": _owner(w)}, "domain.removed"),
    "workspaces.domain_claims_expire": (_domain_claim_expired, "domain.expired"),
    "scim.scim_credential_create": (
        lambda w: {"workspace": w.a, "kind": "bearer", "name": "Okta", "actor": _owner(w)}, "scim.credential_created",
    ),
    "scim.scim_credential_revoke": (_scim_credential, "scim.credential_revoked"),
    "scim.scim_credential_rotate": (_scim_credential, "scim.credential_rotated"),
    "scim.scim_oauth_client_create": (
        lambda w: {"workspace": w.a, "name": "Okta OAuth", "actor": _owner(w),
                   "redirect_uris": "https://system-admin.okta.example/admin/app/cpc/callback"},
        "scim.credential_created",
    ),
    "workspaces.membership_update_profile": (
        lambda w: {"membership": w.member_a, "changes": {"given_name": "Milo", "external_id": "00u1"}, "actor": _owner(w)},
        "member.profile_changed",
    ),
    "workspaces.team_update_external_id": (
        lambda w: {"team": _team(w), "external_id": "00g1", "actor": _owner(w)}, "team.external_id_changed",
    ),
    "scim.scim_set_enabled": (
        lambda w: {"workspace": w.a, "enabled": True, "actor": _owner(w)}, "scim.enabled",
    ),
    "audit.audit_sink_create": (
        lambda w: {"workspace": w.a, "name": "Splunk", "url": "https://siem.example.test/in", "actor": _owner(w)},
        "audit.sink_created",
    ),
    "audit.audit_sink_update": (
        lambda w: {"sink": _sink(w), "is_active": False, "actor": _owner(w)}, "audit.sink_updated",
    ),
    "audit.audit_sink_delete": (lambda w: {"sink": _sink(w), "actor": _owner(w)}, "audit.sink_deleted"),
    "audit.audit_log_export": (
        lambda w: {"workspace": w.a, "actor": as_actor(w.manager_a), "export_format": "csv",
                   "filters": {"action": "member.*"}},
        "audit.exported",
    ),
    "audit.audit_verification_record": (
        lambda w: {"workspace": w.a, "report": verify_chain(w.a.pk), "actor": Actor.system("verifier")},
        "audit.chain_verified",
    ),
    "audit.audit_log_purge": (_purge, "audit.purged"),
    "saml.saml_settings_save": (_metadata, "sso.settings_changed"),
    "saml.saml_metadata_refresh": (_metadata_refresh_failing, "sso.metadata_refresh_failed"),
    "saml.sso_login_complete": (
        lambda w: _verified_login(w, email="member@alpha.test"), "sso.login_succeeded",
    ),
    "saml.sso_test_complete": (
        lambda w: _verified_login(w, email="owner@alpha.test", purpose="test", user=w.owner_a.user),
        "sso.test_succeeded",
    ),
    "saml.sso_login_failed_record": (_login_failure, "sso.login_failed"),
    "saml.group_sync_apply": (_group_sync, "team.member_added"),
    "saml.idp_role_apply": (_role_from_idp, "member.role_changed"),
    "saml.role_attribute_apply": (
        lambda w: {**{k: v for k, v in _role_from_idp(w).items() if k != "actor"}, "cfg": _sso(w).cfg,
                   "created": False},
        "member.role_changed",
    ),
    "saml.saml_pending_apply": (lambda w: {"cfg": _staged_idp(w), "actor": _owner(w)}, "sso.pending_applied"),
    "saml.saml_pending_discard": (
        lambda w: {"workspace": _staged_idp(w).workspace, "actor": _owner(w)}, "sso.pending_discarded",
    ),
    "workspaces.membership_detach": (_scim_linked, "member.detached"),
    "workspaces.membership_link_subject": (
        lambda w: {"membership": w.member_a, "subject": "00u1member", "actor": _owner(w)}, "member.directory_linked",
    ),
    "workspaces.membership_rename": (
        lambda w: {"membership": w.member_a, "email": "milo@alpha.test", "actor": _owner(w)}, "member.renamed",
    ),
    "saml.group_sync_set": (
        lambda w: {"workspace": _sso(w).workspace, "actor": _owner(w), "enabled": True}, "sso.group_sync_changed",
    ),
    "saml.group_mapping_create": (
        lambda w: {"workspace": w.a, "actor": _owner(w), "idp_group": "eng", "team": _team(w)},
        "sso.group_mapping_created",
    ),
    "saml.group_mapping_delete": (_group_mapping, "sso.group_mapping_deleted"),
    "saml.saml_only_set": (_tested_sso, "sso.enforcement_changed"),
    "saml.sp_key_prepare": (lambda w: {"workspace": _sso(w).workspace, "actor": _owner(w)}, "sso.sp_key_prepared"),
    "saml.sp_key_activate": (lambda w: _sp_key(w, rollover=1), "sso.sp_key_activated"),
    "saml.sp_key_retire": (lambda w: _sp_key(w, rollover=2), "sso.sp_key_retired"),
    "saml.sp_options_set": (lambda w: {**_sp_key(w), "sign_authn_requests": True}, "sso.sp_options_changed"),
    "saml.break_glass_codes_regenerate": (_enforced, "sso.break_glass_codes_regenerated"),
    "saml.break_glass_use": (_break_glass_use, "sso.break_glass_used"),
    "saml.break_glass_failed_record": (
        lambda w: {"workspace": w.a, "email": "owner@alpha.test", "reason": "That recovery code is not valid."},
        "sso.break_glass_failed",
    ),
}


def _project_apps() -> list[tuple[str, Path]]:
    base = Path(settings.BASE_DIR).resolve()
    return sorted(
        (config.name, Path(config.path).resolve()) for config in apps.get_app_configs()
        if Path(config.path).resolve().is_relative_to(base)  # not Django's and libraries' apps
    )


def _service_modules(app_dirs: list[tuple[str, Path]] | None = None) -> list[str]:
    """Every module named in SERVICE_PACKAGES, or inside a package of that name, at any depth of each app."""
    names = []
    for app, path in _project_apps() if app_dirs is None else app_dirs:
        for file in sorted(path.rglob("*.py")):
            parts = file.relative_to(path).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            if parts and parts[-1].startswith("_"):
                continue  # a package's private helpers (``services/_common.py``), called by its audited services
            if any(part in SERVICE_PACKAGES for part in parts) and "migrations" not in parts:
                names.append(".".join((app, *parts)))
    extra = [m for m in EXTRA_MODULES if app_dirs is None and importlib.util.find_spec(m) is not None]
    return sorted(names) + extra


def _public_functions(modules: list[str] | None = None) -> dict[str, Callable]:
    """Full dotted name -> function, for the functions each module defines (re-exports are found once, where defined)."""
    found = {}
    for module_name in _service_modules() if modules is None else modules:
        module = importlib.import_module(module_name)
        for name, obj in vars(module).items():
            if name.startswith("_") or not inspect.isfunction(obj) or obj.__module__ != module_name:
                continue
            found[f"{module_name}.{name}"] = obj
    return found


def _matches(entry: str, functions: dict[str, Callable]) -> list[str]:
    """The functions an entry names: ``app.function`` wherever the function lives in its app, or a full dotted
    path; a full path that no longer exists still names the function of that name in that app (it moved)."""
    if entry in functions:
        return [entry]
    app, name = entry.partition(".")[0], entry.rpartition(".")[2]
    return [full for full in functions if full.partition(".")[0] == app and full.rpartition(".")[2] == name]


def _function(entry: str) -> Callable:
    matches = _matches(entry, _public_functions())
    assert len(matches) == 1, f"coverage entry {entry!r} names {matches or 'no function'}: key it by full path"
    return _public_functions()[matches[0]]


def _all_entries() -> set[str]:
    return set(FIXTURES) | set(NOT_A_CHANGE) | set(DECISIONS)


def _uncovered(functions: dict[str, Callable] | None = None, entries: set[str] | None = None) -> list[str]:
    functions = _public_functions() if functions is None else functions
    entries = _all_entries() if entries is None else entries
    covered = {full for entry in entries for full in _matches(entry, functions)}
    return sorted(set(functions) - covered)


def _atomic_of(fn: Callable) -> Atomic | None:
    """The Atomic a ``@transaction.atomic`` function opens (ContextDecorator keeps it in the closure)."""
    for cell in getattr(fn, "__closure__", None) or ():
        if isinstance(cell.cell_contents, Atomic):
            return cell.cell_contents
    return None


def test_every_public_service_function_is_either_audited_here_or_declared_not_a_change():
    functions = _public_functions()
    assert _matches("workspaces.membership_change_role", functions)  # the walker walks
    unknown = _uncovered()
    assert not unknown, (
        "New service function(s) without an audit coverage entry: "
        f"{unknown}. Add each (as app.function, e.g. 'workspaces.team_archive') to FIXTURES in "
        "tests/audit/test_coverage.py (valid arguments + the action it records), or to NOT_A_CHANGE if it really "
        "changes nothing."
    )
    stale = sorted(entry for entry in _all_entries() if not _matches(entry, functions))
    assert not stale, f"Coverage entries for functions that no longer exist: {stale}"
    ambiguous = sorted(entry for entry in _all_entries() if len(_matches(entry, functions)) > 1)
    assert not ambiguous, f"Coverage entries naming several functions (key them by full dotted path): {ambiguous}"


def test_a_new_service_function_without_a_coverage_entry_is_caught(monkeypatch):
    import workspaces.services as services

    @transaction.atomic
    def team_archive(*, team, actor):  # a change someone forgot to audit
        team.save()

    team_archive.__module__ = "workspaces.services"
    monkeypatch.setattr(services, "team_archive", team_archive, raising=False)
    assert _uncovered() == ["workspaces.services.team_archive"]


PROBE = "coverageprobe"  # a throwaway app laid out the way services are split: packages of modules


def test_the_walker_finds_service_functions_in_packages_and_subpackages_and_entries_follow_moves(
    tmp_path, monkeypatch
):
    app = tmp_path / PROBE
    files = {
        "__init__.py": "",
        "services/__init__.py": "from .teams import team_create, team_archive\n\ndef _helper():\n    pass\n",
        "services/teams.py": (
            "from django.db import transaction\n\n"
            "@transaction.atomic\ndef team_create(*, name, actor):\n    pass\n\n"
            "@transaction.atomic\ndef team_archive(*, team, actor):  # nobody audited this\n    team.save()\n"
        ),
        "services/members/__init__.py": "",
        "services/members/roles.py": "def membership_demote(*, membership, actor):\n    pass\n",
        "deprovisioning/__init__.py": "",
        "deprovisioning/runner.py": "def deprovision_jobs_purge(*, actor):\n    pass\n",
        "views.py": "def not_a_service(request):\n    pass\n",
    }
    for name, source in files.items():
        (app / name).parent.mkdir(parents=True, exist_ok=True)
        (app / name).write_text(source)
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        modules = _service_modules([(PROBE, app)])
        assert modules == [f"{PROBE}.deprovisioning", f"{PROBE}.deprovisioning.runner", f"{PROBE}.services",
                           f"{PROBE}.services.members", f"{PROBE}.services.members.roles", f"{PROBE}.services.teams"]
        functions = _public_functions(modules)
        # Re-exported by the package __init__, found once, where it is defined.
        assert sorted(functions) == [f"{PROBE}.deprovisioning.runner.deprovision_jobs_purge",
                                     f"{PROBE}.services.members.roles.membership_demote",
                                     f"{PROBE}.services.teams.team_archive", f"{PROBE}.services.teams.team_create"]
        # An app-qualified entry, and the full path from before team_create moved into services/teams.py, both cover it;
        # the un-audited functions are reported wherever they live.
        for entry in (f"{PROBE}.team_create", f"{PROBE}.services.team_create"):
            assert _uncovered(functions, {entry}) == [
                f"{PROBE}.deprovisioning.runner.deprovision_jobs_purge",
                f"{PROBE}.services.members.roles.membership_demote", f"{PROBE}.services.teams.team_archive",
            ]
    finally:
        for name in [m for m in sys.modules if m == PROBE or m.startswith(f"{PROBE}.")]:
            del sys.modules[name]


def test_every_audited_service_function_is_atomic_and_named_entity_verb():
    for name in FIXTURES:
        fn = _function(name)
        assert _atomic_of(fn) is not None, f"{name} must be decorated with @transaction.atomic"
        assert "_" in fn.__name__, f"{name} must be named <entity>_<verb>"
        params = inspect.signature(fn).parameters.values()
        assert all(p.kind is inspect.Parameter.KEYWORD_ONLY or p.kind is inspect.Parameter.VAR_KEYWORD for p in params), (
            f"{name} must take keyword-only arguments"
        )


@pytest.mark.parametrize("qualname", sorted(FIXTURES))
def test_service_function_records_its_event_inside_its_own_transaction(qualname, world):
    fn = _function(qualname)
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
    "workspaces.package_access_check": (_readable_repository, "package.pulled"),
    "workspaces.api_key_sso_refusal_record": (_personal_key, "api_key.sso_refused"),
}


@pytest.mark.parametrize("qualname", sorted(DECISIONS))
def test_a_decision_records_its_event_durably_before_it_returns(qualname, transactional_db, world):
    """Outside any transaction the event is committed by the time the answer is returned: another
    connection sees it, and no transaction is left open."""
    import threading

    fn = _function(qualname)
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
    fn = _function(qualname)
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
