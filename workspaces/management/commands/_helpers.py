"""Shared bits of the admin commands: the audit actor and looking things up with clear errors."""

from __future__ import annotations

import getpass

from django.core.management.base import CommandError

from audit.record import Actor
from workspaces.models import Membership, Team, Workspace


def command_actor(command: str) -> Actor:
    """Commands act as the system, labelled with the command and the operating-system user who ran it."""
    try:
        who = getpass.getuser()
    except Exception:  # noqa: BLE001 - no login name in some containers
        who = "unknown"
    return Actor.system(f"manage.py {command} (by {who})")


def get_workspace(slug: str) -> Workspace:
    workspace = Workspace.objects.filter(slug=slug).first()
    if workspace is None:
        raise CommandError(f"No workspace {slug!r}. Create one with: manage.py createworkspace {slug} --name NAME --owner EMAIL")
    return workspace


def get_member(workspace: Workspace, email: str) -> Membership:
    member = Membership.objects.select_related("user", "workspace").filter(workspace=workspace, user__email__iexact=email).first()
    if member is None:
        raise CommandError(f"{email} is not a member of {workspace.slug}. Add them with: manage.py member {workspace.slug} {email} --add")
    return member


def get_team(workspace: Workspace, name: str) -> Team:
    team = Team.objects.filter(workspace=workspace, name__iexact=name).first()
    if team is None:
        raise CommandError(f"No team {name!r} in {workspace.slug}. Create it with: manage.py team {workspace.slug} {name!r} --create")
    return team
