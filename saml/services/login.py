"""The SSO login flow: AuthnRequests out, verified assertions in, turned into a member of *this* workspace.

``saml.acs.verify_response`` proves the response; this module writes: the once-only AuthnRequest and
replay store, the member found by email or created just in time (JIT), group sync, the audit events.
The caller (``saml.views.acs``) grants the session for this workspace only.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from saml2 import BINDING_HTTP_REDIRECT
from saml2.xmldsig import SIG_RSA_SHA256

from audit.record import Actor, record_event
from config.metrics import saml_login_counted
from workspaces import services as ws
from workspaces.exceptions import ServiceError
from workspaces.models import Membership, User, Workspace
from workspaces.roles import Role, directory_may_grant

from .. import selectors
from ..acs import AcsFailure, VerifiedLogin, verify_response
from ..models import AuthnRequestPurpose, IssuedAuthnRequest, SamlMemberState, SamlSettings, UsedAssertion
from ..sp import RequestSigner, client_for, redirect_sso_url
from ..sp_keys import SpKeyUnreadable, load_private_key
from ._audit import saml_actor, workspace_target
from .group_sync import asserted_role, group_sync_apply, role_attribute_apply
from .idp_settings import saml_pending_apply, settings_with_pending

logger = logging.getLogger(__name__)


def _is_local_path(target: str) -> bool:
    """Only local, relative targets (``/w/x/``) are followed after login: no scheme, no host, no ``//``."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")):
        return False
    if any(ord(c) < 33 for c in target) or "\\" in target:
        return False
    return url_has_allowed_host_and_scheme(target, allowed_hosts=set(), require_https=False)


def safe_next(target: str | None) -> str:
    """``target`` when it is a local path (an open redirect stopped), else ``""``."""
    return target if target and _is_local_path(target) else ""


@transaction.atomic
def authn_request_issue(
    *, workspace: Workspace, cfg: SamlSettings, next_url: str = "", purpose: str = AuthnRequestPurpose.LOGIN,
    user: User | None = None,
) -> str:
    """Remember a new AuthnRequest (database: every web process can match it) and return the IdP redirect URL."""
    if purpose == AuthnRequestPurpose.TEST:
        # A staged IdP change is tested against the staged IdP: its success is what makes it live.
        cfg = settings_with_pending(cfg) or cfg
    client = client_for(cfg, workspace.slug)
    destination = redirect_sso_url(cfg)
    signing = selectors.active_sp_key(cfg) if cfg.sign_authn_requests else None
    # Redirect binding: the signature goes in the query (SAMLRequest, RelayState, SigAlg, Signature; bindings 3.4.4.1),
    # made by pysaml2 with the workspace's active SP key. The cached client holds the key for this call only.
    try:
        client.sec.sec_backend = RequestSigner(load_private_key(signing.key_encrypted)) if signing else None
    except SpKeyUnreadable:
        logger.error("the SP key of workspace %s cannot be decrypted at rest; AuthnRequests cannot be signed",
                     workspace.pk)
        raise ServiceError("Single sign-on cannot start: this workspace's SP key cannot be read (the portal's "
                           "SAML_SP_KEY_ENCRYPTION_KEY or SECRET_KEY changed). Ask a workspace Owner.") from None
    try:
        request_id, info = client.prepare_for_authenticate(
            entityid=cfg.idp_entity_id, binding=BINDING_HTTP_REDIRECT, sso_url=destination if destination else None,
            relay_state="", sign=signing is not None, sigalg=SIG_RSA_SHA256,
            # Test SSO asks the IdP to authenticate the Owner again rather than reuse an IdP session.
            force_authn=purpose == AuthnRequestPurpose.TEST,
        )
    finally:
        client.sec.sec_backend = None
    now = timezone.now()
    IssuedAuthnRequest.objects.create(
        workspace=workspace, request_id=request_id, purpose=purpose, next_url=safe_next(next_url),
        user=user, expires_at=now + timedelta(seconds=settings.SAML_AUTHN_REQUEST_TTL),
    )
    return str(dict(info["headers"])["Location"])


@dataclass
class SsoOutcome:
    membership: Membership
    next_url: str
    test: bool = False
    created: bool = False
    # The member exists but the person has not accepted this workspace's invitation (workspaces/consent.py): no
    # session grant, the page says where the invitation went.
    consent_pending: bool = False


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


def verify_login_response(*, workspace: Workspace, cfg: SamlSettings | None,
                          saml_response: str) -> tuple[VerifiedLogin, bool]:
    """``saml.acs.verify_response`` against the live IdP; failing that, against a staged IdP change, which may answer
    a Test SSO only. Returns the verified login and whether the staged IdP answered it."""
    try:
        return verify_response(cfg=cfg, slug=workspace.slug, workspace_id=workspace.pk,
                               saml_response=saml_response), False
    except AcsFailure as live_failure:
        staged = settings_with_pending(cfg) if cfg is not None else None
        if staged is None:
            raise
        try:
            verified = verify_response(cfg=staged, slug=workspace.slug, workspace_id=workspace.pk,
                                       saml_response=saml_response)
        except AcsFailure:
            raise live_failure from None
    if verified.authn_request is None or verified.authn_request.purpose != AuthnRequestPurpose.TEST:
        raise AcsFailure("pending_idp_login", "the staged IdP answered a login; until a Test SSO makes it live it "
                                              "may answer Test SSO only")
    return verified, True


@transaction.atomic
def sso_login_failed_record(*, workspace: Workspace, failure: AcsFailure, email: str = "") -> None:
    """``sso.login_failed`` with the precise reason (never key material: codes and short details only)."""
    saml_login_counted("refused", failure.code)
    record_event(
        actor=Actor(kind="user", id="", label=(email or "unknown")[:255], auth_method="saml"),
        action="sso.login_failed", workspace=workspace, **workspace_target(workspace),
        details={"reason": failure.code, "detail": failure.detail},
    )


def _jit_role(workspace: Workspace) -> str:
    """The role a just-in-time member gets: the default, or Member when the IdP may not grant that."""
    role = workspace.default_role
    return role if directory_may_grant(workspace, role) else Role.MEMBER


def login_subject(cfg: SamlSettings, login: VerifiedLogin) -> str:
    """The IdP's immutable id for this person, as the workspace configured it ("" when it uses email only).

    Configured but absent (or unusable) refuses the login: falling back to the email would link a person by a value
    that can change, which is what the setting exists to prevent.
    """
    source = cfg.subject_attribute
    if not source:
        return ""
    if source == "NameID":
        value = login.name_id
    else:
        value = next((v for v in login.attributes.get(source) or [] if v and v.strip()), "")
    value = value.strip()
    if not value or len(value) > 255:
        raise AcsFailure("no_subject", f"the assertion carries no usable {source} (1 to 255 characters)")
    return value


def _jit_member(workspace: Workspace, cfg: SamlSettings, login: VerifiedLogin, subject: str, role: str, *,
                role_from_idp: bool) -> Membership:
    try:
        membership = ws.membership_add(
            workspace=workspace, email=login.email, actor=saml_actor(f"SAML JIT ({cfg.idp_entity_id})"),
            role=role, full_name=" ".join(p for p in (login.first_name, login.last_name) if p),
            source="saml_jit", given_name=login.first_name[:150], family_name=login.last_name[:150],
            directory_email=login.email[:254], saml_subject=subject, role_from_idp=role_from_idp,
        )
    except ServiceError as exc:
        # The account is a member already under another directory email (renamed by the IdP): the old address no
        # longer signs in to that member, and is not a second one either.
        raise AcsFailure("jit_refused", exc.message) from None
    return Membership.objects.select_related("user", "workspace").get(pk=membership.pk)


def _follow_directory(membership: Membership, cfg: SamlSettings, login: VerifiedLogin, subject: str,
                      found_by: str) -> None:
    """Link the member to the IdP's subject at its first login with one; found by that subject under a new email,
    rename it in place (``workspaces.services.membership_rename``)."""
    actor = saml_actor(f"SAML login ({cfg.idp_entity_id})")
    if subject and membership.saml_subject != subject:
        ws.membership_link_subject(membership=membership, subject=subject, actor=actor)
    known_as = membership.directory_email or membership.user.email
    if found_by in ("subject", "external_id") and known_as.lower() != login.email.lower():
        ws.membership_rename(membership=membership, email=login.email[:254], actor=actor)


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
    subject = login_subject(cfg, login)
    try:
        membership, found_by = selectors.member_for_sso(workspace, email=login.email, subject=subject)
    except selectors.AmbiguousMember:
        raise AcsFailure("ambiguous_member", f"several members of this workspace answer to {login.email}") from None
    created = False
    role = asserted_role(workspace=workspace, cfg=cfg, attributes=login.attributes)
    if membership is None:
        if subject and selectors.email_linked_to_another_subject(workspace, login.email):
            raise AcsFailure("subject_mismatch", f"{login.email} belongs to a member linked to another IdP subject")
        if not workspace.jit_provisioning:
            raise AcsFailure("unknown_member", f"{login.email} is not a member and JIT provisioning is off")
        # The role attribute's role when the IdP may grant it (role_attribute_apply audits a refused Owner).
        granted = role if role is not None and directory_may_grant(workspace, role) else None
        membership = _jit_member(workspace, cfg, login, subject, granted or _jit_role(workspace),
                                 role_from_idp=granted is not None)
        created = True
    if not membership.is_active or not membership.user.is_active:
        raise AcsFailure("member_inactive", f"{login.email} is deactivated in this workspace")
    if membership.consent_pending:
        # An existing account this workspace attached (now by JIT, or earlier by SCIM or an Owner): the IdP's
        # assertion proves the person to this workspace, but joining it is the person's choice, made by accepting
        # the invitation (sent just now by JIT). Committed, not rolled back: the member and its invitation stay.
        saml_login_counted("refused", "consent_pending")
        record_event(
            actor=Actor(kind="user", id="", label=login.email[:255], auth_method="saml"),
            action="sso.login_failed", workspace=workspace, **workspace_target(workspace),
            details={"reason": "consent_pending", "detail": "the person has not accepted the invitation yet"},
        )
        return SsoOutcome(membership=membership, next_url="", created=created, consent_pending=True)
    if not created:
        _follow_directory(membership, cfg, login, subject, found_by)
    state, _ = SamlMemberState.objects.get_or_create(membership=membership)
    if cfg.group_sync_enabled:
        # The role attribute, when the assertion carries it, decides the role; group mappings then give teams only.
        group_sync_apply(membership=membership, groups=login.groups, state=state, cfg=cfg, roles=role is None)
    if role is not None:
        role_attribute_apply(membership=membership, role=role, state=state, cfg=cfg, created=created)
    state.groups = login.groups[:200]
    state.last_sso_at = now
    state.save()
    ws.membership_record_login(
        membership=membership, actor=ws.actor_for_membership(membership, "saml"), action="sso.login_succeeded",
    )
    next_url = (request.next_url if request else "") or safe_next(relay_state)
    saml_login_counted("accepted")
    return SsoOutcome(membership=membership, next_url=next_url, created=created)


@transaction.atomic
def sso_test_complete(*, workspace: Workspace, cfg: SamlSettings, login: VerifiedLogin,
                      pending: bool = False) -> SsoOutcome:
    """Finish a Test SSO run: the whole flow is verified, nobody's session or rights change.

    It counts as successful only when the IdP asserted the Owner who started the test, with the immutable subject
    and a mapped role where the workspace uses them (so enforcing SAML-only cannot lock that Owner out).
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
    mappings = list(selectors.group_mappings_for(workspace))
    would_get = sorted({m.team.name for m in mappings if m.team and m.idp_group in login.groups})
    details: dict[str, object] = {"email": login.email, "groups": login.groups[:50], "mapped_teams": would_get,
                                  "encrypted": login.encrypted, "decrypted_with": login.decrypted_with}
    # What a login would do with the immutable subject and the role attribute, shown on the settings page. A value
    # a login would refuse (no subject, an unmapped role) fails the test: enforcing SAML-only on it would lock out.
    if cfg.subject_attribute:
        details["subject"] = login_subject(cfg, login)
    if cfg.role_attribute:
        details["role_values"] = (login.attributes.get(cfg.role_attribute) or [])[:20]
        details["role"] = asserted_role(workspace=workspace, cfg=cfg, attributes=login.attributes) or ""
    if pending:
        # Answered and verified by the staged IdP, for an active Owner: it becomes the live IdP now.
        saml_pending_apply(cfg=cfg, actor=ws.actor_for_membership(owner, "saml"))
        details["applied_staged_idp"] = True
    # The result page also shows the NameID and the attributes as sent (the audit event keeps the summary only).
    shown = {**details, "name_id": login.name_id[:255],
             "attributes": {k[:200]: [v[:200] for v in values[:5]] for k, values in list(login.attributes.items())[:30]}}
    SamlSettings.objects.filter(pk=cfg.pk).update(
        last_test_succeeded_at=now, last_test_by=starter, last_test_result=shown
    )
    record_event(
        actor=ws.actor_for_membership(owner, "saml"), action="sso.test_succeeded", workspace=workspace,
        **workspace_target(workspace), details=details,
    )
    return SsoOutcome(membership=owner, next_url=f"/w/{workspace.slug}/settings/sso/", test=True)


def purge_expired(*, now: datetime | None = None) -> dict[str, int]:
    """Housekeeping (no audit: protocol bookkeeping, not a change anyone made)."""
    now = now or timezone.now()
    requests, _ = IssuedAuthnRequest.objects.filter(expires_at__lt=now - timedelta(days=1)).delete()
    assertions, _ = UsedAssertion.objects.filter(expires_at__lt=now).delete()
    return {"authn_requests": requests, "used_assertions": assertions}
