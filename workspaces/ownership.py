"""Field ownership: what a member's identity provider owns, which the portal (people, API keys, manage.py) may not
change, and why. The one place for that rule; services call ``require_portal_may_change``.

A member the IdP manages (linked by SCIM, or by an immutable SAML subject) has its name, email and active state
owned by the IdP, its role too when the last role change came from the IdP, and each team membership the IdP
pushed (a SCIM group, SAML group sync). Removing access is never blocked: the portal may always deactivate. An
Owner may detach a member from the IdP (``workspaces.services.membership_detach``); the portal then owns it all.
"""

from __future__ import annotations

from audit.record import Actor

from .exceptions import NotAllowed
from .models import Membership, TeamMembership, TeamSource

DETACH_HINT = "change it in your identity provider, or an Owner can detach this member from it (member page)"


def is_directory(actor: Actor) -> bool:
    """The IdP itself acting: a SCIM client, or SAML at a login (JIT, group sync, role attribute, renames)."""
    return actor.kind == "scim_client" or actor.auth_method == "saml"


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


def require_portal_may_change(actor: Actor, membership: Membership, what: str) -> None:
    """Raise ``NotAllowed`` when the portal tries to change what the member's IdP owns (the IdP itself may)."""
    if is_directory(actor):
        return
    reason = idp_owned(membership, what)
    if reason:
        raise NotAllowed(reason, field=what)


def pushed_team_memberships(team_id: int) -> dict[int, str]:
    """Member id -> why the portal may not remove that member from the team (the IdP pushed it)."""
    rows = (
        TeamMembership.objects.filter(team_id=team_id).exclude(source=TeamSource.MANUAL)
        .select_related("membership")
    )
    return {tm.membership_id: reason for tm in rows if (reason := team_membership_owned(tm))}
