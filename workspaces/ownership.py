"""Field ownership: what a member's identity provider owns, which the portal (people, API keys, manage.py) may not
change, and why. The one place for that rule; services call ``require_portal_may_change``.

A member the IdP manages (linked by SCIM, or by an immutable SAML subject) has its name, email and active state
owned by the IdP, its role too when the last role change came from the IdP, and each team membership the IdP
pushed (a SCIM group, SAML group sync). A team a SCIM group push created, or one SAML group sync maps a group to,
has its member list owned by the IdP: nobody else adds members to it (GitHub's team sync rule), since the IdP's
next push or login would take them out again. Removing access is never blocked: the portal may always
deactivate. An Owner may detach a member from the IdP (``workspaces.services.membership_detach``); the portal then
owns it all.

A workspace may let the connector API override the IdP (``Workspace.api_may_override_idp``, off by default): a
governance tool's decision (an access review's revocation) then wins until the IdP next changes the same thing.
"""

from __future__ import annotations

from django.db.models import Exists, OuterRef, QuerySet

from audit.record import Actor

from .exceptions import IdpOwned
from .models import Membership, Team, TeamMembership, TeamSource, Workspace

DETACH_HINT = "change it in your identity provider, or an Owner can detach this member from it (member page)"


def is_directory(actor: Actor) -> bool:
    """The IdP itself acting: a SCIM client, or SAML at a login (JIT, group sync, role attribute, renames)."""
    return actor.kind == "scim_client" or actor.auth_method == "saml"


def may_override_idp(actor: Actor, workspace: Workspace) -> bool:
    """A connector API key acting in a workspace that lets governance tools override its IdP."""
    return actor.auth_method == "api_key" and bool(workspace.api_may_override_idp)


def idp_owned(membership: Membership, what: str) -> str:
    """Why the portal may not change ``what`` (``name``, ``email``, ``role``, ``reactivate``), or ``""``."""
    manager = membership.managed_by
    if not manager:
        return ""
    if what == "role" and not membership.role_from_idp:
        return ""
    if what == "reactivate" and manager != "SCIM":
        return ""  # SAML never deactivates anyone: a reactivation there undoes a person's decision only
    label = {"reactivate": "active state"}.get(what, what)
    return f"This member's {label} is managed by your identity provider ({manager}): {DETACH_HINT}."


def team_membership_owned(team_membership: TeamMembership) -> str:
    """Why the portal may not remove this team membership (the IdP pushed it), or ``""``."""
    if team_membership.source == TeamSource.MANUAL or team_membership.membership.detached_at is not None:
        return ""
    how = "a SCIM group" if team_membership.source == TeamSource.SCIM else "SAML group sync"
    return f"This team membership is managed by your identity provider ({how}): {DETACH_HINT}."


def team_owned_reason(*, scim: bool, saml: bool) -> str:
    """Why nobody but the IdP adds members to a team a SCIM group push created (``scim``) or SAML group sync maps a
    group to (``saml``), or ``""``."""
    if not (scim or saml):
        return ""
    how = "SCIM group push" if scim else "SAML group sync"
    return (f"This team's members are managed by your identity provider ({how}): add people to the group in your "
            "identity provider instead.")


def team_owned(team: Team) -> str:
    """``team_owned_reason`` for one team (the SAML mapping, in the saml app, read through its reverse relation, or
    from ``saml_mapped`` when the team was read with ``with_saml_mapped``)."""
    mapped = getattr(team, "saml_mapped", None)
    saml = not team.scim_managed and (team.saml_group_mappings.exists() if mapped is None else bool(mapped))
    return team_owned_reason(scim=team.scim_managed, saml=saml)


def with_saml_mapped(teams: QuerySet[Team]) -> QuerySet[Team]:
    """``teams`` each with ``saml_mapped`` (a SAML group maps to it), read in the same statement: ``team_owned`` then
    needs no query of its own."""
    return teams.annotate(saml_mapped=Exists(Team.objects.filter(pk=OuterRef("pk"), saml_group_mappings__isnull=False)))


def require_portal_may_change(actor: Actor, membership: Membership, what: str) -> None:
    """Raise ``IdpOwned`` when the portal tries to change what the member's IdP owns (the IdP itself may, and a
    connector API key where the workspace allows the override)."""
    if is_directory(actor) or may_override_idp(actor, membership.workspace):
        return
    reason = idp_owned(membership, what)
    if reason:
        raise IdpOwned(reason, field=what, owner=membership.managed_by)


def require_portal_may_add_to_team(actor: Actor, team: Team) -> None:
    """Raise ``IdpOwned`` when someone other than the IdP adds members to a team the IdP manages."""
    if is_directory(actor) or may_override_idp(actor, team.workspace):
        return
    reason = team_owned(team)
    if reason:
        raise IdpOwned(reason, field="member", owner="SCIM" if team.scim_managed else "SAML")


def pushed_team_memberships(team_id: int) -> dict[int, str]:
    """Member id -> why the portal may not remove that member from the team (the IdP pushed it)."""
    rows = (
        TeamMembership.objects.filter(team_id=team_id).exclude(source=TeamSource.MANUAL)
        .select_related("membership")
    )
    return {tm.membership_id: reason for tm in rows if (reason := team_membership_owned(tm))}
