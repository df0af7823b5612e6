"""Every change SAML makes: IdP settings, AuthnRequests, logins, group sync, enforcement and break-glass.

Keyword-only, atomic, audited in the same transaction (``audit.record.record_event``), rights through
``workspaces.roles``; member and team changes go through ``workspaces.services`` so SSO, SCIM and the UI
share one set of rules and one audit trail.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone
from saml2 import BINDING_HTTP_REDIRECT

from audit.record import Actor, record_event
from workspaces import services as ws
from workspaces.exceptions import LastOwnerError, NotAllowed, ServiceError
from workspaces.models import Membership, Team, TeamMembership, TeamSource, User, Workspace
from workspaces.roles import ROLE_RANK, Cap, Role

from . import selectors
from .acs import AcsFailure, VerifiedLogin
from .fetch import FetchError, fetch_metadata_url
from .metadata import MetadataError, ParsedMetadata, cert_info, parse_idp_metadata
from .models import (
    AuthnRequestPurpose,
    BreakGlassCode,
    GroupMapping,
    IssuedAuthnRequest,
    SamlMemberState,
    SamlSettings,
    SsoEmailDomain,
    UsedAssertion,
)
from .sp import client_for

logger = logging.getLogger(__name__)



def _settings_target(workspace: Workspace) -> dict[str, Any]:
    return {"target_type": "workspace", "target_id": workspace.pk, "target_label": workspace.slug}


def saml_actor(label: str) -> Actor:
    """The actor for changes SAML makes on its own (JIT, group sync): authorised by the IdP's signed word."""
    return Actor(kind="system", id="", label=label[:255], auth_method="saml")


def _summary(cfg: SamlSettings) -> dict[str, Any]:
    return {
        "idp_entity_id": cfg.idp_entity_id,
        "sso_urls": [u["location"] for u in cfg.sso_urls],
        "certificates": [cert_info(c).fingerprint_sha256 for c in cfg.certificates],
        "metadata_url": cfg.metadata_url,
        "email_attribute": cfg.email_attribute,
        "first_name_attribute": cfg.first_name_attribute,
        "last_name_attribute": cfg.last_name_attribute,
        "groups_attribute": cfg.groups_attribute,
        "idp_initiated": cfg.idp_initiated,
        "allow_sha1": cfg.allow_sha1,
        "clock_skew_seconds": cfg.clock_skew_seconds,
        "email_domains": sorted(d.domain for d in cfg.email_domains.all()) if cfg.pk else [],
    }


def _normalise_domains(domains: list[str]) -> list[str]:
    out = []
    for raw in domains:
        domain = raw.strip().lower().lstrip("@")
        if not domain:
            continue
        if "." not in domain or any(c.isspace() or c in "/@:" for c in domain):
            raise ServiceError(f"{raw!r} is not an email domain (example: example.com).", field="email_domains")
        if domain not in out:
            out.append(domain)
    return out


def _load_metadata(metadata_xml: str, metadata_url: str) -> tuple[ParsedMetadata, str]:
    if metadata_xml.strip():
        xml = metadata_xml.strip()
    elif metadata_url.strip():
        try:
            xml = fetch_metadata_url(metadata_url.strip()).decode("utf-8", errors="replace")
        except FetchError as exc:
            raise ServiceError(str(exc), field="metadata_url") from None
    else:
        raise ServiceError("Paste the IdP metadata XML or give its metadata URL.", field="metadata_xml")
    try:
        parsed = parse_idp_metadata(xml)
    except MetadataError as exc:
        raise ServiceError(" ".join(exc.errors), field="metadata_xml") from None
    return parsed, xml


@transaction.atomic
def saml_settings_save(
    *,
    workspace: Workspace,
    actor: Actor,
    metadata_xml: str = "",
    metadata_url: str = "",
    email_domains: list[str] | None = None,
    email_attribute: str | None = None,
    first_name_attribute: str | None = None,
    last_name_attribute: str | None = None,
    groups_attribute: str | None = None,
    idp_initiated: bool | None = None,
    allow_sha1: bool | None = None,
    clock_skew_seconds: int | None = None,
) -> SamlSettings:
    """Validate IdP metadata (entity ID, SSO URL, signing certificate) and save this workspace's SSO settings.

    A new IdP identity (entity ID or certificates) voids the last Test SSO: enforcement needs a fresh one.
    """
    ws.require_capability(actor, workspace, Cap.SETTINGS_MANAGE)
    cfg = SamlSettings.objects.select_for_update().filter(workspace=workspace).first()
    if cfg is not None and not metadata_xml.strip() and not metadata_url.strip():
        metadata_xml = cfg.metadata_xml  # changing the mapping only: keep (and re-validate) the current metadata
    parsed, xml = _load_metadata(metadata_xml, metadata_url)
    created = cfg is None
    before = _summary(cfg) if cfg else {}
    if cfg is None:
        cfg = SamlSettings(workspace=workspace)
    identity_changed = created or cfg.idp_entity_id != parsed.entity_id or set(cfg.certificates) != set(parsed.certificates)
    cfg.metadata_xml = xml
    cfg.metadata_url = metadata_url.strip()
    cfg.metadata_fetched_at = timezone.now() if cfg.metadata_url else None
    cfg.metadata_refresh_error = ""
    cfg.idp_entity_id = parsed.entity_id
    cfg.sso_urls = parsed.sso_urls
    cfg.certificates = parsed.certificates
    for name, value in (
        ("email_attribute", email_attribute), ("first_name_attribute", first_name_attribute),
        ("last_name_attribute", last_name_attribute), ("groups_attribute", groups_attribute),
    ):
        if value is not None:
            setattr(cfg, name, value.strip()[:200])
    if idp_initiated is not None:
        cfg.idp_initiated = idp_initiated
    if allow_sha1 is not None:
        cfg.allow_sha1 = allow_sha1
    if clock_skew_seconds is not None:
        if not 0 <= clock_skew_seconds <= 600:
            raise ServiceError("Clock skew must be between 0 and 600 seconds.", field="clock_skew_seconds")
        cfg.clock_skew_seconds = clock_skew_seconds
    if identity_changed:
        cfg.last_test_succeeded_at = None
        cfg.last_test_by = None
    cfg.updated_at = timezone.now()
    if not created:
        cfg.version = F("version") + 1
    cfg.save()
    cfg.refresh_from_db()
    if email_domains is not None:
        domains = _normalise_domains(email_domains)
        taken = SsoEmailDomain.objects.filter(domain__in=domains).exclude(saml_settings=cfg)
        if taken.exists():
            raise ServiceError(
                f"The domain {taken.first().domain} already sends its people to another workspace's SSO.",
                field="email_domains",
            )
        cfg.email_domains.exclude(domain__in=domains).delete()
        for domain in domains:
            SsoEmailDomain.objects.get_or_create(saml_settings=cfg, domain=domain)
    after = _summary(cfg)
    changes = {k: {"before": before.get(k), "after": v} for k, v in after.items() if before.get(k) != v}
    record_event(
        actor=actor, action="sso.settings_changed", workspace=workspace, **_settings_target(workspace),
        details={"created": created, "changes": changes, "test_reset": identity_changed and not created},
    )
    return cfg


@transaction.atomic
def saml_metadata_refresh(*, settings_id: int, actor: Actor) -> str:
    """Re-fetch a metadata URL. Changes are audited; a failure keeps the last good metadata and warns."""
    cfg = SamlSettings.objects.select_for_update().select_related("workspace").filter(pk=settings_id).first()
    if cfg is None or not cfg.metadata_url:
        return "skipped"
    workspace = cfg.workspace
    try:
        body = fetch_metadata_url(cfg.metadata_url).decode("utf-8", errors="replace")
        parsed = parse_idp_metadata(body)
    except (FetchError, MetadataError) as exc:
        message = str(exc)[:500]
        logger.warning("SAML metadata refresh failed for workspace %s: %s (keeping the last good metadata)",
                       workspace.slug, message)
        cfg.metadata_refresh_error = message
        cfg.save(update_fields=["metadata_refresh_error"])
        record_event(actor=actor, action="sso.metadata_refresh_failed", workspace=workspace,
                     **_settings_target(workspace), details={"error": message, "kept_last_good": True})
        return "failed"
    before = _summary(cfg)
    cfg.metadata_xml = body
    cfg.idp_entity_id = parsed.entity_id
    cfg.sso_urls = parsed.sso_urls
    cfg.certificates = parsed.certificates
    cfg.metadata_fetched_at = timezone.now()
    cfg.metadata_refresh_error = ""
    after = _summary(cfg)
    changes = {k: {"before": before[k], "after": v} for k, v in after.items() if before[k] != v}
    if changes:
        cfg.updated_at = timezone.now()
        cfg.version = F("version") + 1
    cfg.save()
    if changes:
        record_event(actor=actor, action="sso.metadata_refreshed", workspace=workspace,
                     **_settings_target(workspace), details={"changes": changes})
        return "changed"
    return "unchanged"


# ----------------------------------------------------------------------------- AuthnRequests


def _is_local_path(target: str) -> bool:
    """Only local, relative targets (``/w/x/``) are followed after login: no scheme, no host, no ``//``."""
    from django.utils.http import url_has_allowed_host_and_scheme

    if not target or not target.startswith("/") or target.startswith(("//", "/\\")):
        return False
    if any(ord(c) < 33 for c in target) or "\\" in target:
        return False
    return url_has_allowed_host_and_scheme(target, allowed_hosts=set(), require_https=False)


def safe_next(target: str | None) -> str:
    return target if target and _is_local_path(target) else ""


@transaction.atomic
def authn_request_issue(
    *, workspace: Workspace, cfg: SamlSettings, next_url: str = "", purpose: str = AuthnRequestPurpose.LOGIN,
    user: User | None = None,
) -> str:
    """Remember a new AuthnRequest (database: every web process can match it) and return the IdP redirect URL."""
    from .sp import redirect_sso_url

    client = client_for(cfg, workspace.slug)
    destination = redirect_sso_url(cfg)
    request_id, info = client.prepare_for_authenticate(
        entityid=cfg.idp_entity_id, binding=BINDING_HTTP_REDIRECT, sso_url=destination if destination else None,
        relay_state="",
        # Test SSO asks the IdP to authenticate the Owner again rather than reuse an IdP session.
        force_authn=purpose == AuthnRequestPurpose.TEST,
    )
    now = timezone.now()
    IssuedAuthnRequest.objects.create(
        workspace=workspace, request_id=request_id, purpose=purpose, next_url=safe_next(next_url),
        user=user, expires_at=now + timedelta(seconds=settings.SAML_AUTHN_REQUEST_TTL),
    )
    return dict(info["headers"])["Location"]


# ----------------------------------------------------------------------------- logins


@dataclass
class SsoOutcome:
    membership: Membership | None
    next_url: str
    test: bool = False
    created: bool = False


def _consume(login: VerifiedLogin, workspace: Workspace, now: datetime) -> None:
    """Close the AuthnRequest and remember the assertion ID: both are once-only, across every process."""
    if login.authn_request is not None:
        taken = IssuedAuthnRequest.objects.filter(
            pk=login.authn_request.pk, consumed_at__isnull=True
        ).update(consumed_at=now)
        if taken != 1:
            raise AcsFailure("replay", "the AuthnRequest was already answered")
    try:
        with transaction.atomic():
            UsedAssertion.objects.create(
                workspace=workspace, assertion_id=login.assertion_id[:256], expires_at=login.replay_expires_at
            )
    except IntegrityError:
        raise AcsFailure("replay", f"assertion {login.assertion_id[:80]} already used") from None


@transaction.atomic
def sso_login_failed_record(*, workspace: Workspace, failure: AcsFailure, email: str = "") -> None:
    """``sso.login_failed`` with the precise reason (never key material: codes and short details only)."""
    record_event(
        actor=Actor(kind="user", id="", label=(email or "unknown")[:255], auth_method="saml"),
        action="sso.login_failed", workspace=workspace, **_settings_target(workspace),
        details={"reason": failure.code, "detail": failure.detail},
    )


@transaction.atomic
def sso_login_complete(*, workspace: Workspace, cfg: SamlSettings, login: VerifiedLogin,
                       relay_state: str = "") -> SsoOutcome:
    """Finish a verified SAML login: replay store, member lookup or JIT, group sync, audit.

    Raises ``AcsFailure`` (nothing is kept) when the response was replayed or the person may not enter.
    The caller grants the session for *this* workspace only.
    """
    now = timezone.now()
    request = login.authn_request
    if request is not None and request.purpose == AuthnRequestPurpose.TEST:
        raise AcsFailure("rejected", "a Test SSO response cannot log in")
    _consume(login, workspace, now)
    membership = (
        Membership.objects.select_related("user", "workspace")
        .filter(workspace=workspace, user__email__iexact=login.email).first()
    )
    created = False
    if membership is None:
        if not workspace.jit_provisioning:
            raise AcsFailure("unknown_member", f"{login.email} is not a member and JIT provisioning is off")
        role = workspace.default_role
        if role == Role.OWNER and not workspace.scim_may_grant_owner:
            role = Role.MEMBER  # the IdP never mints Owners unless the workspace allows it
        membership = ws.membership_add(
            workspace=workspace, email=login.email, actor=saml_actor(f"SAML JIT ({cfg.idp_entity_id})"),
            role=role, full_name=" ".join(p for p in (login.first_name, login.last_name) if p),
            source="saml_jit", given_name=login.first_name[:150], family_name=login.last_name[:150],
        )
        membership = Membership.objects.select_related("user", "workspace").get(pk=membership.pk)
        created = True
    if not membership.is_active or not membership.user.is_active:
        raise AcsFailure("member_inactive", f"{login.email} is deactivated in this workspace")
    state, _ = SamlMemberState.objects.get_or_create(membership=membership)
    if cfg.group_sync_enabled:
        group_sync_apply(membership=membership, groups=login.groups, state=state, cfg=cfg)
    state.groups = login.groups[:200]
    state.last_sso_at = now
    state.save()
    ws.membership_record_login(
        membership=membership, actor=ws.actor_for_membership(membership, "saml"), action="sso.login_succeeded",
    )
    next_url = (request.next_url if request else "") or safe_next(relay_state)
    return SsoOutcome(membership=membership, next_url=next_url, created=created)


@transaction.atomic
def sso_test_complete(*, workspace: Workspace, cfg: SamlSettings, login: VerifiedLogin) -> SsoOutcome:
    """Finish a Test SSO run: the whole flow is verified, nobody's session or rights change.

    It counts as successful only when the IdP asserted the Owner who started the test (so enforcing
    SAML-only cannot lock that Owner out).
    """
    request = login.authn_request
    if request is None or request.purpose != AuthnRequestPurpose.TEST or request.user is None:
        raise AcsFailure("rejected", "not a Test SSO response")
    now = timezone.now()
    _consume(login, workspace, now)
    starter = request.user
    if login.email.lower() != starter.email.lower():
        raise AcsFailure("test_identity_mismatch", f"IdP asserted {login.email}, the test was started by {starter.email}")
    owner = selectors.active_owner_for_email(workspace, starter.email)
    if owner is None:
        raise AcsFailure("member_inactive", "the test was not started by an active Owner")
    SamlSettings.objects.filter(pk=cfg.pk).update(last_test_succeeded_at=now, last_test_by=starter)
    mappings = list(selectors.group_mappings_for(workspace))
    would_get = sorted({m.team.name for m in mappings if m.team and m.idp_group in login.groups})
    record_event(
        actor=ws.actor_for_membership(owner, "saml"), action="sso.test_succeeded", workspace=workspace,
        **_settings_target(workspace),
        details={"email": login.email, "groups": login.groups[:50], "mapped_teams": would_get},
    )
    return SsoOutcome(membership=owner, next_url=f"/w/{workspace.slug}/settings/sso/", test=True)


# ----------------------------------------------------------------------------- group sync


@transaction.atomic
def group_sync_apply(*, membership: Membership, groups: list[str], state: SamlMemberState, cfg: SamlSettings) -> None:
    """Apply mappings for one login. Touches only teams that have a mapping; never demotes an Owner made
    outside the IdP; makes an Owner only when the workspace allows the IdP to; every change is audited."""
    workspace = membership.workspace
    actor = saml_actor(f"SAML group sync ({cfg.idp_entity_id})")
    asserted = set(groups)
    mappings = list(GroupMapping.objects.filter(workspace=workspace).select_related("team"))
    managed: dict[int, Team] = {m.team_id: m.team for m in mappings if m.team_id}
    wanted = {m.team_id for m in mappings if m.team_id and m.idp_group in asserted}
    current = set(
        TeamMembership.objects.filter(membership=membership, team_id__in=managed).values_list("team_id", flat=True)
    )
    for team_id in sorted(wanted - current):
        ws.team_add_members(team=managed[team_id], memberships=[membership], actor=actor, source=TeamSource.SAML)
    for team_id in sorted((current - wanted) & set(managed)):
        ws.team_remove_members(team=managed[team_id], memberships=[membership], actor=actor, source=TeamSource.SAML)

    role_mappings = [m for m in mappings if m.role and m.idp_group in asserted]
    if not workspace.scim_may_grant_owner:
        refused = [m for m in role_mappings if m.role == Role.OWNER]
        if refused:
            record_event(actor=actor, action="sso.group_sync_skipped", workspace=workspace,
                         target_type="member", target_id=membership.pk, target_label=membership.user.email,
                         details={"reason": "the IdP may not grant Owner in this workspace", "group": refused[0].idp_group})
        role_mappings = [m for m in role_mappings if m.role != Role.OWNER]
    # Highest priority wins; on a tie the higher role.
    role_mappings.sort(key=lambda m: (m.priority, ROLE_RANK.get(m.role, 0)), reverse=True)
    target = role_mappings[0].role if role_mappings else None
    if membership.role == Role.OWNER and not state.role_from_idp:
        return  # an Owner made by a person stays an Owner whatever the IdP says (getsentry/sentry#56331)
    if target is None:
        if state.role_from_idp and membership.role != workspace.default_role:
            target = workspace.default_role if workspace.default_role != Role.OWNER else Role.MEMBER
        else:
            return
    if target == membership.role:
        state.role_from_idp = bool(role_mappings)
        return
    try:
        with transaction.atomic():
            ws.membership_change_role(membership=membership, role=target, actor=actor)
    except LastOwnerError:
        record_event(actor=actor, action="sso.group_sync_skipped", workspace=workspace,
                     target_type="member", target_id=membership.pk, target_label=membership.user.email,
                     details={"reason": "last active Owner keeps the role", "wanted_role": target})
        return
    state.role_from_idp = bool(role_mappings)


@transaction.atomic
def group_mapping_create(
    *, workspace: Workspace, actor: Actor, idp_group: str, team: Team | None = None, new_team_name: str = "",
    role: str = "", priority: int = 0,
) -> GroupMapping:
    """Map an IdP group to a team (existing, or created now) and/or an org role."""
    ws.require_capability(actor, workspace, Cap.SETTINGS_MANAGE)
    idp_group = idp_group.strip()
    if not idp_group:
        raise ServiceError("Give the IdP group name exactly as the IdP sends it.", field="idp_group")
    if role and role not in Role.values:
        raise ServiceError(f"Unknown role {role!r}.", field="role")
    if role == Role.OWNER and not workspace.scim_may_grant_owner:
        raise NotAllowed("This workspace does not let the IdP grant Owner (see workspace policy).", field="role")
    if team is not None and team.workspace_id != workspace.pk:
        raise ServiceError("That team belongs to another workspace.", field="team")
    if new_team_name.strip():
        if team is not None:
            raise ServiceError("Choose an existing team or a new team name, not both.", field="new_team_name")
        existing = Team.objects.filter(workspace=workspace, name__iexact=new_team_name.strip()).first()
        team = existing or ws.team_create(workspace=workspace, name=new_team_name, actor=actor)
    if team is None and not role:
        raise ServiceError("A mapping needs a team, a role, or both.", field="team")
    if GroupMapping.objects.filter(workspace=workspace, idp_group=idp_group, team=team).exists():
        raise ServiceError("That mapping already exists.", field="idp_group")
    mapping = GroupMapping.objects.create(workspace=workspace, idp_group=idp_group, team=team, role=role, priority=priority)
    record_event(actor=actor, action="sso.group_mapping_created", workspace=workspace,
                 target_type="group_mapping", target_id=mapping.pk, target_label=idp_group,
                 details={"team": team.name if team else "", "role": role, "priority": priority})
    return mapping


@transaction.atomic
def group_mapping_delete(*, mapping: GroupMapping, actor: Actor) -> None:
    ws.require_capability(actor, mapping.workspace, Cap.SETTINGS_MANAGE)
    record_event(actor=actor, action="sso.group_mapping_deleted", workspace=mapping.workspace,
                 target_type="group_mapping", target_id=mapping.pk, target_label=mapping.idp_group,
                 details={"team": mapping.team.name if mapping.team else "", "role": mapping.role})
    mapping.delete()


@transaction.atomic
def group_sync_set(*, workspace: Workspace, actor: Actor, enabled: bool) -> SamlSettings:
    ws.require_capability(actor, workspace, Cap.SETTINGS_MANAGE)
    cfg = SamlSettings.objects.select_for_update().filter(workspace=workspace).first()
    if cfg is None:
        raise ServiceError("Set up single sign-on first.")
    if cfg.group_sync_enabled == enabled:
        return cfg
    cfg.group_sync_enabled = enabled
    cfg.save(update_fields=["group_sync_enabled"])
    record_event(actor=actor, action="sso.group_sync_changed", workspace=workspace, **_settings_target(workspace),
                 details={"before": {"enabled": not enabled}, "after": {"enabled": enabled}})
    return cfg


# ----------------------------------------------------------------------------- enforcement and break-glass


def _hash_code(code: str) -> str:
    return hashlib.sha256(code.strip().replace("-", "").lower().encode()).hexdigest()


def _new_codes(workspace: Workspace, user: User | None) -> list[str]:
    BreakGlassCode.objects.filter(workspace=workspace, used_at__isnull=True, revoked_at__isnull=True).update(
        revoked_at=timezone.now()
    )
    codes = []
    for _ in range(settings.SAML_BREAK_GLASS_CODES):
        raw = secrets.token_hex(10)  # 80 random bits, shown once
        code = "-".join(raw[i : i + 5] for i in range(0, 20, 5))
        BreakGlassCode.objects.create(workspace=workspace, code_hash=_hash_code(code), created_by=user)
        codes.append(code)
    return codes


@transaction.atomic
def saml_only_set(*, workspace: Workspace, actor: Actor, enabled: bool) -> list[str]:
    """Switch SAML-only on (only after a successful Test SSO in the last 24 h) or off.

    Turning it on returns fresh one-time break-glass codes for Owners (shown once, stored hashed);
    existing password sessions die at their next request (``workspaces.access.grant_problem``).
    """
    ws.require_capability(actor, workspace, Cap.SETTINGS_MANAGE)
    workspace = Workspace.objects.select_for_update().get(pk=workspace.pk)
    cfg = selectors.saml_settings_for(workspace)
    if workspace.saml_only == enabled:
        return []
    codes: list[str] = []
    if enabled:
        if not selectors.test_is_fresh(cfg):
            raise ServiceError("Run Test SSO successfully first (within the last 24 hours), then enforce SAML-only.")
        codes = _new_codes(workspace, actor.membership.user if actor.membership else None)
    else:
        BreakGlassCode.objects.filter(workspace=workspace, used_at__isnull=True, revoked_at__isnull=True).update(
            revoked_at=timezone.now()
        )
    workspace.saml_only = enabled
    workspace.save(update_fields=["saml_only"])
    record_event(actor=actor, action="sso.enforcement_changed", workspace=workspace, **_settings_target(workspace),
                 details={"before": {"saml_only": not enabled}, "after": {"saml_only": enabled},
                          "break_glass_codes_issued": len(codes)})
    return codes


@transaction.atomic
def break_glass_codes_regenerate(*, workspace: Workspace, actor: Actor) -> list[str]:
    ws.require_capability(actor, workspace, Cap.SETTINGS_MANAGE)
    if not workspace.saml_only:
        raise ServiceError("Break-glass codes exist only while SAML-only is enforced.")
    codes = _new_codes(workspace, actor.membership.user if actor.membership else None)
    record_event(actor=actor, action="sso.break_glass_codes_regenerated", workspace=workspace,
                 **_settings_target(workspace), details={"codes": len(codes)})
    return codes


@transaction.atomic
def break_glass_use(*, workspace: Workspace, user: User, code: str) -> Membership:
    """Spend one recovery code: only an active Owner of this workspace, only once, loudly audited."""
    owner = selectors.active_owner_for_email(workspace, user.email)
    row = (
        BreakGlassCode.objects.select_for_update()
        .filter(workspace=workspace, code_hash=_hash_code(code), used_at__isnull=True, revoked_at__isnull=True)
        .first()
    )
    if owner is None or row is None or not workspace.saml_only:
        raise NotAllowed("That recovery code is not valid for you in this workspace.")
    row.used_at = timezone.now()
    row.used_by = user
    row.save(update_fields=["used_at", "used_by"])
    left = selectors.break_glass_codes_left(workspace)
    record_event(
        actor=ws.actor_for_membership(owner, "break_glass"), action="sso.break_glass_used", workspace=workspace,
        target_type="member", target_id=owner.pk, target_label=user.email,
        details={"codes_left": left, "warning": "SAML-only was bypassed with a recovery code"},
    )
    slug, email = workspace.slug, user.email
    transaction.on_commit(lambda: logger.warning("BREAK-GLASS: %s used a recovery code for workspace %s (%d left)",
                                                 email, slug, left))
    return owner


@transaction.atomic
def break_glass_failed_record(*, workspace: Workspace, email: str, reason: str) -> None:
    record_event(actor=Actor(kind="user", id="", label=email[:255], auth_method="break_glass"),
                 action="sso.break_glass_failed", workspace=workspace, **_settings_target(workspace),
                 details={"reason": reason})


def purge_expired(*, now: datetime | None = None) -> dict[str, int]:
    """Housekeeping (no audit: protocol bookkeeping, not a change anyone made)."""
    now = now or timezone.now()
    requests, _ = IssuedAuthnRequest.objects.filter(expires_at__lt=now - timedelta(days=1)).delete()
    assertions, _ = UsedAssertion.objects.filter(expires_at__lt=now).delete()
    return {"authn_requests": requests, "used_assertions": assertions}
