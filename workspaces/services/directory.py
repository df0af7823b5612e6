"""Changes a directory (SCIM, SAML group sync) makes: profile attributes, external ids, which roles it may grant."""

from __future__ import annotations

from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from audit.record import Actor, record_event

from ..domains import email_domain_verified, verified_workspace_for_email
from ..exceptions import AlreadyExists, NotAllowed, ServiceError
from ..models import Membership, Team, TeamSource, User, Workspace
from ..roles import Cap, Role, directory_may_grant
from ._common import member_target, require_capability, touch

PROFILE_FIELDS = frozenset(
    {"scim_username", "external_id", "directory_email", "given_name", "family_name", "display_name", "profile",
     "allowed_environments"}
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
            touch(membership, *after)
    except IntegrityError as exc:
        for key, value in before.items():  # the instance keeps what is stored
            setattr(membership, key, value)
        raise AlreadyExists("A member with this userName already exists in this workspace.", field="userName") from exc
    record_event(
        actor=actor, action="member.profile_changed", workspace=membership.workspace, **member_target(membership),
        details={"before": before, "after": after},
    )
    return membership


def _account_may_follow(user: User, membership: Membership, email: str) -> str:
    """Why the account's own email stays as it is when the directory renames this member ("" when it follows).

    The rule (docs/architecture.md, "Directory link"), the one place for it:

    - an address in a domain another workspace has verified is that workspace's to hand out: no other IdP moves
      an account into it;
    - an address another account holds is never taken from it;
    - the account must belong to this workspace alone, unless this workspace has verified the domains of both the
      old and the new address: then the account is an address of its own domain (BigCorp renaming
      ann@bigcorp.com to ann.lee@bigcorp.com), and leaving the old address on it would keep a login on an address
      the domain's owner may give to someone else. An account whose address is outside the workspace's verified
      domains (a personal address, a partner's) is never renamed by this workspace's IdP while it is a member
      elsewhere.
    """
    if membership.consent_pending:
        # Consent (workspaces/consent.py): the account existed before this workspace attached it; until the person
        # accepts, the workspace owns nothing of it, its email least of all.
        return "the person has not accepted this workspace's invitation"
    workspace_id = membership.workspace_id
    holder = verified_workspace_for_email(email)
    if holder is not None and holder != workspace_id:
        return "the domain is verified by another workspace"
    if Membership.objects.filter(user=user).exclude(pk=membership.pk).exists() and not (
        holder == workspace_id and email_domain_verified(workspace_id, user.email)
    ):
        return "the account is also a member of another workspace"
    if User.objects.filter(email__iexact=email).exclude(pk=user.pk).exists():
        return "another account holds this email"
    return ""


@transaction.atomic
def membership_rename(*, membership: Membership, email: str, actor: Actor) -> Membership:
    """The workspace's IdP now knows this member by ``email`` (a SCIM userName/emails change, or a SAML login with
    the member's immutable subject and a new email): the same member, renamed in place.

    The member's directory email becomes ``email``: SSO into this workspace finds the member by it, and no longer by
    the old one. The account's own email (password login, every workspace's lists) follows under the rule of
    ``_account_may_follow``. One ``member.renamed`` event says what changed and, when the account kept its email, why.
    """
    require_capability(actor, membership.workspace, Cap.MEMBER_MANAGE)
    email = email.strip()
    before = membership.directory_email
    if before == email:
        return membership
    membership.directory_email = email
    touch(membership, "directory_email")
    user = membership.user
    details: dict[str, Any] = {"before": before, "after": email}
    if user.email != email:
        old, kept = user.email, _account_may_follow(user, membership, email)
        if not kept:
            user.email = email
            try:
                with transaction.atomic():
                    user.save(update_fields=["email"])
            except IntegrityError:  # taken between the check and the write
                user.email, kept = old, "another account holds this email"
        details["account_email"] = {"kept": old, "reason": kept} if kept else {"before": old, "after": email}
    record_event(
        actor=actor, action="member.renamed", workspace=membership.workspace, **member_target(membership),
        details=details,
    )
    return membership


@transaction.atomic
def membership_link_subject(*, membership: Membership, subject: str, actor: Actor) -> Membership:
    """Link the member to the IdP's immutable subject (first SSO login with one): from then on SSO finds the member
    by it first, whatever email the IdP asserts. Refused when another member of the workspace holds it."""
    require_capability(actor, membership.workspace, Cap.MEMBER_MANAGE)
    subject = subject.strip()
    if not subject or len(subject) > 255:
        raise ServiceError("An IdP subject is 1 to 255 characters.", field="saml_subject")
    if membership.saml_subject == subject:
        return membership
    before = membership.saml_subject
    membership.saml_subject = subject
    try:
        with transaction.atomic():
            touch(membership, "saml_subject")
    except IntegrityError as exc:
        membership.saml_subject = before
        raise AlreadyExists("Another member of this workspace is linked to this IdP subject.",
                            field="saml_subject") from exc
    record_event(
        actor=actor, action="member.directory_linked", workspace=membership.workspace, **member_target(membership),
        details={"subject": subject, "before": before},
    )
    return membership


@transaction.atomic
def membership_detach(*, membership: Membership, actor: Actor) -> Membership:
    """An Owner takes a member out of the IdP's hands (``workspaces.ownership``): from now on the portal owns its
    name, email, active state, role and teams. The IdP may still deactivate it (removing access is never refused);
    every other change it sends for this member is left unapplied. Audited as ``member.detached``."""
    require_capability(actor, membership.workspace, Cap.MEMBER_MAKE_OWNER)
    membership = Membership.objects.select_for_update().select_related("user", "workspace").get(pk=membership.pk)
    manager = membership.managed_by
    if not manager:
        raise ServiceError("This member is not managed by the identity provider.", field="member")
    pushed = list(membership.team_memberships.exclude(source=TeamSource.MANUAL).values_list("team__name", flat=True))
    membership.team_memberships.exclude(source=TeamSource.MANUAL).update(source=TeamSource.MANUAL)
    membership.detached_at = timezone.now()
    membership.role_from_idp = False
    touch(membership, "detached_at", "role_from_idp")
    record_event(
        actor=actor, action="member.detached", workspace=membership.workspace, **member_target(membership),
        details={"from": manager, "scim_username": membership.scim_username, "subject": membership.saml_subject,
                 "teams_now_manual": sorted(pushed)},
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
    touch(team, "external_id")
    record_event(
        actor=actor, action="team.external_id_changed", workspace=team.workspace,
        target_type="team", target_id=team.pk, target_label=team.name,
        details={"before": {"externalId": before}, "after": {"externalId": external_id}},
    )
    return team
