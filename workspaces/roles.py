"""Org roles and the capability matrix: the one place that says who may do what.

Views, templates (``{% if can.team_manage %}``), the REST API and SCIM all ask ``can()``.
Rules that depend on the *target* as well as the actor (only Owners touch Owners, the last
Owner stays) are in ``may_change_role`` / ``may_manage_member`` below, still here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.db import models

if TYPE_CHECKING:
    from .models import Membership, Workspace


class Role(models.TextChoices):
    OWNER = "owner", "Owner"
    MANAGER = "manager", "Manager"
    MEMBER = "member", "Member"
    COLLABORATOR = "collaborator", "Collaborator"


class Cap(models.TextChoices):
    WORKSPACE_VIEW = "workspace.view", "See the workspace"
    MEMBERS_LIST = "members.list", "List members (public ones; private too with members.view_private)"
    MEMBERS_VIEW_PRIVATE = "members.view_private", "See private members"
    MEMBER_MANAGE = "member.manage", "Change roles, deactivate and reactivate members"
    MEMBER_MAKE_OWNER = "member.make_owner", "Make or unmake Owners"
    MEMBER_SET_AUDITOR = "member.set_auditor", "Give or take the auditor permission"
    TEAMS_LIST = "teams.list", "See all teams (without it: only the teams one belongs to)"
    TEAM_MANAGE = "team.manage", "Create, rename and delete teams, change their members"
    REPOSITORIES_LIST = "repositories.list", "See all repositories"
    REPOSITORY_MANAGE = "repository.manage", "Create repositories and change grants"
    APIKEY_OWN = "apikey.own", "Create and revoke one's own personal API keys"
    APIKEY_SERVICE = "apikey.service", "Create and revoke workspace service keys"
    SETTINGS_MANAGE = "settings.manage", "Change SSO, provisioning and workspace policy"
    AUDIT_VIEW = "audit.view", "Read the audit log"
    REVIEW_MANAGE = "review.manage", "Start access reviews and decide keep or revoke"


_ALL = set(Cap)

MATRIX: dict[str, frozenset[str]] = {
    Role.OWNER: frozenset(_ALL),
    Role.MANAGER: frozenset(
        _ALL - {Cap.MEMBER_MAKE_OWNER, Cap.MEMBER_SET_AUDITOR, Cap.APIKEY_SERVICE, Cap.SETTINGS_MANAGE,
                Cap.REVIEW_MANAGE}
    ),
    # A Member sees public members, the teams it belongs to and every repository.
    Role.MEMBER: frozenset({Cap.WORKSPACE_VIEW, Cap.MEMBERS_LIST, Cap.REPOSITORIES_LIST, Cap.APIKEY_OWN}),
    # A Collaborator sees only itself and what is granted to it directly.
    Role.COLLABORATOR: frozenset({Cap.WORKSPACE_VIEW, Cap.APIKEY_OWN}),
}


# Order of the roles, lowest first: where two sources (SAML role mappings, group sync) name
# different roles for one person, the higher wins unless a mapping's priority says otherwise.
ROLE_RANK: dict[str, int] = {Role.COLLABORATOR: 0, Role.MEMBER: 1, Role.MANAGER: 2, Role.OWNER: 3}


def directory_may_grant(workspace: Workspace, role: str) -> bool:
    """May an identity provider (SCIM ``role``, SAML role mapping, group sync) give this role?

    Owner only when the workspace allows it (Sentry's policy: a compromised IdP must not
    mint Owners); unknown roles never.
    """
    if role not in Role.values:
        return False
    return role != Role.OWNER or bool(workspace.scim_may_grant_owner)


def can(membership: Membership | None, cap: str) -> bool:
    """True when this active membership's role (or auditor flag) gives the capability."""
    if membership is None or not membership.is_active:
        return False
    # An auditor (any role) reads the log and runs access reviews: the evidence an audit asks for.
    if membership.is_auditor and cap in (Cap.AUDIT_VIEW, Cap.REVIEW_MANAGE):
        return True
    return cap in MATRIX.get(membership.role, frozenset())


def capabilities(membership: Membership | None) -> dict[str, bool]:
    """All capabilities as a dict with template-friendly keys (``team.manage`` -> ``team_manage``)."""
    return {c.value.replace(".", "_"): can(membership, c.value) for c in Cap}


def may_manage_member(actor: Membership | None, target: Membership) -> bool:
    """Managers manage non-Owners; only Owners touch Owners."""
    if not can(actor, Cap.MEMBER_MANAGE):
        return False
    if target.role == Role.OWNER and not can(actor, Cap.MEMBER_MAKE_OWNER):
        return False
    return True


def may_change_role(actor: Membership | None, target: Membership, new_role: str) -> bool:
    """Only Owners make Owners (or demote them); Managers move others among the lower roles."""
    if not may_manage_member(actor, target):
        return False
    if new_role == Role.OWNER and not can(actor, Cap.MEMBER_MAKE_OWNER):
        return False
    return True


class ApiScope(models.TextChoices):
    """What a workspace service key may do (chosen by the Owner who creates it).

    Personal keys act with their owner's role instead; if a personal key carries scopes, they
    narrow it further (never widen it).
    """

    MEMBERS_READ = "members:read", "Read the member roster, private members included"
    TEAMS_READ = "teams:read", "Read all teams and their members"
    REPOSITORIES_READ = "repositories:read", "Read repositories and their grants"
    ACCESS_CHECK = "access:check", "Ask whether a member may pull, push or delete a package"
    AUDIT_READ = "audit:read", "Read the workspace's audit log (SIEM pulls)"
    GRANTS_READ = "grants:read", "Read entitlements and who holds them (roles, teams, repository permissions)"
    ROLES_WRITE = "roles:write", "Grant and revoke the Manager, Member and Collaborator roles"
    OWNERS_WRITE = "owners:write", "Also grant and revoke the Owner role, and change or deactivate Owners"
    TEAMS_WRITE = "teams:write", "Add members to teams and remove them"
    REPOSITORIES_WRITE = "repositories:write", "Grant and revoke repository permissions"
    MEMBERS_WRITE = "members:write", "Deactivate and reactivate members"
    REVIEWS_READ = "reviews:read", "Read access reviews and export them"
    REVIEWS_WRITE = "reviews:write", "Start access reviews, decide keep or revoke, and complete them"
