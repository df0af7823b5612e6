"""Reads for SAML: settings, discovery by email domain, mappings, previews. Always scoped by workspace."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Q, QuerySet
from django.db.models.functions import Lower
from django.utils import timezone

from workspaces.domains import verified_workspace_for_email
from workspaces.models import Membership, TeamMembership, TeamSource, Workspace

from . import sp_keys
from .models import BreakGlassCode, GroupMapping, SamlSettings, SpKey, SpKeyState


def saml_settings_for(workspace: Workspace) -> SamlSettings | None:
    return SamlSettings.objects.filter(workspace=workspace).first()


def saml_settings_by_slug(slug: str) -> tuple[Workspace | None, SamlSettings | None]:
    workspace = Workspace.objects.filter(slug=slug).first()
    if workspace is None:
        return None, None
    return workspace, saml_settings_for(workspace)


logger = logging.getLogger(__name__)

# Which SP keys do what during rollover (docs/saml.md, "SP key rollover").
PUBLISHED_STATES = (SpKeyState.ACTIVE, SpKeyState.NEXT)
DECRYPTING_STATES = (SpKeyState.ACTIVE, SpKeyState.NEXT, SpKeyState.PREVIOUS)


def sp_keys_for(cfg: SamlSettings | None) -> list[SpKey]:
    """This workspace's SP keys that are not retired: active first, then next, then previous."""
    if cfg is None or cfg.pk is None:
        return []
    order = {SpKeyState.ACTIVE: 0, SpKeyState.NEXT: 1, SpKeyState.PREVIOUS: 2}
    keys = SpKey.objects.filter(saml_settings_id=cfg.pk, state__in=DECRYPTING_STATES)
    return sorted(keys, key=lambda k: (order[SpKeyState(k.state)], k.created_at))


def active_sp_key(cfg: SamlSettings | None) -> SpKey | None:
    return next((k for k in sp_keys_for(cfg) if k.state == SpKeyState.ACTIVE), None)


def sp_decryption_keys(cfg: SamlSettings) -> dict[str, bytes]:
    """The private keys (PEM, by certificate fingerprint) an encrypted assertion to this workspace may be decrypted
    with: active, next, previous. Read only when an assertion is encrypted."""
    pems: dict[str, bytes] = {}
    for key in sp_keys_for(cfg):
        if not key.key_encrypted:
            continue
        try:
            pems[key.fingerprint_sha256] = sp_keys.unprotect(key.key_encrypted)
        except sp_keys.SpKeyUnreadable:
            # SECRET_KEY or SAML_SP_KEY_ENCRYPTION_KEY changed: the login is refused (decryption_failed), never a 500.
            logger.error("SP key %s of SAML settings %s cannot be decrypted at rest", key.pk, cfg.pk)
    return pems


def sso_workspace_for_email(email: str) -> Workspace | None:
    """The workspace whose SSO ``/login/``'s "Log in with SSO" sends this email to: the one workspace holding the
    email's domain verified (a DNS TXT record proved it, ``workspaces.domains``), when it has set up SSO. A
    claimed but unverified domain routes nowhere, so no workspace can send another company's people to its IdP."""
    workspace_id = verified_workspace_for_email(email)
    if workspace_id is None:
        return None
    cfg = SamlSettings.objects.select_related("workspace").filter(workspace_id=workspace_id).first()
    return cfg.workspace if cfg else None


def _answering_to(members: QuerySet[Membership], email: str) -> QuerySet[Membership]:
    """The members whose directory email is ``email``, or, for a member without one, whose account email is."""
    address = email.strip().lower()
    return members.alias(directory_ci=Lower("directory_email"), account_ci=Lower("user__email")).filter(
        Q(directory_ci=address) | Q(directory_email="", account_ci=address)
    )


class AmbiguousMember(Exception):
    """Two members of the workspace answer to the same email: SSO will not guess between them."""


def member_for_sso(workspace: Workspace, *, email: str, subject: str = "") -> tuple[Membership | None, str]:
    """The member a verified SAML login is for, and how it was found (``subject``, ``external_id``, ``email``).

    By the directory link first (docs/architecture.md, "Directory link"): the IdP's immutable ``subject`` as linked
    at an earlier login, else as the SCIM ``externalId`` of a member not linked yet (Okta's user id, Entra's object
    id). By email only after that: the member's directory email (what the IdP knows the member by), or the account's
    email while the member has none; with a subject, only among members not linked to another subject.
    """
    members = Membership.objects.select_related("user", "workspace").filter(workspace=workspace)
    if subject:
        found = members.filter(saml_subject=subject).first()
        if found is not None:
            return found, "subject"
        by_id = list(members.filter(saml_subject="", external_id=subject)[:2])
        if len(by_id) == 1:
            return by_id[0], "external_id"
    by_email = _answering_to(members, email)
    if subject:
        by_email = by_email.filter(saml_subject="")
    candidates = list(by_email[:2])
    if len(candidates) > 1:
        raise AmbiguousMember(email)
    return (candidates[0], "email") if candidates else (None, "")


def email_linked_to_another_subject(workspace: Workspace, email: str) -> bool:
    """A member of the workspace answers to this email but is linked to another IdP subject."""
    return _answering_to(Membership.objects.filter(workspace=workspace).exclude(saml_subject=""), email).exists()


def test_is_fresh(cfg: SamlSettings | None, now: datetime | None = None) -> bool:
    if cfg is None or cfg.last_test_succeeded_at is None:
        return False
    now = now or timezone.now()
    return now - cfg.last_test_succeeded_at <= timedelta(seconds=settings.SAML_TEST_FRESHNESS)


def group_mappings_for(workspace: Workspace) -> QuerySet[GroupMapping]:
    return GroupMapping.objects.filter(workspace=workspace).select_related("team").order_by("-priority", "idp_group")


def group_sync_preview(workspace: Workspace) -> QuerySet[TeamMembership]:
    """Who sits in an IdP-managed team without having been put there by group sync.

    When group sync is on, each of them leaves that team at their next SSO login unless the IdP asserts
    the mapped group. Shown before the switch is turned on (lockouts are the classic mistake).
    """
    return (
        TeamMembership.objects.filter(team__workspace=workspace, team__saml_group_mappings__isnull=False)
        .exclude(source=TeamSource.SAML)
        .select_related("team", "membership__user")
        .order_by("team__name", "membership__user__email")
        .distinct()
    )


def break_glass_codes_left(workspace: Workspace) -> int:
    return BreakGlassCode.objects.filter(workspace=workspace, used_at__isnull=True, revoked_at__isnull=True).count()


def recent_break_glass_uses(workspace: Workspace, days: int = 30) -> QuerySet[BreakGlassCode]:
    since = timezone.now() - timedelta(days=days)
    return (
        BreakGlassCode.objects.filter(workspace=workspace, used_at__gte=since)
        .select_related("used_by").order_by("-used_at")
    )


def active_owner_for_email(workspace: Workspace, email: str) -> Membership | None:
    return Membership.objects.filter(
        workspace=workspace, user__email__iexact=email, role="owner", is_active=True, user__is_active=True
    ).select_related("user").first()


def members_without_sso_sign_in(workspace: Workspace, limit: int = 20) -> tuple[int, list[Membership]]:
    """Active members (not pending consent) who have never signed in through this workspace's SSO: enforcing
    SAML-only leaves them no way in until their IdP account works. The count, and the first ``limit`` by email."""
    qs = Membership.objects.filter(
        workspace=workspace, is_active=True, consent_pending_since__isnull=True, last_sso_at__isnull=True,
    ).select_related("user").order_by("user__email")
    return qs.count(), list(qs[:limit])
