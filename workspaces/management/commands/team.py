"""Automate the team page: ``team SLUG NAME [--create] [--add EMAIL ...] [--remove EMAIL ...] [--rename NEW] [--delete]``."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from workspaces import services
from workspaces.exceptions import ServiceError

from ._helpers import command_actor, get_member, get_team, get_workspace


class Command(BaseCommand):
    help = "Create, rename or delete a team and change its members."

    def add_arguments(self, parser) -> None:
        parser.add_argument("slug")
        parser.add_argument("name")
        parser.add_argument("--create", action="store_true")
        parser.add_argument("--add", nargs="+", default=[], metavar="EMAIL")
        parser.add_argument("--remove", nargs="+", default=[], metavar="EMAIL")
        parser.add_argument("--rename", metavar="NEW_NAME")
        parser.add_argument("--delete", action="store_true")

    def handle(self, *args, slug: str, name: str, **o) -> None:
        workspace = get_workspace(slug)
        actor = command_actor("team")
        try:
            team = services.team_create(workspace=workspace, name=name, actor=actor) if o["create"] else get_team(workspace, name)
            if o["add"]:
                services.team_add_members(team=team, memberships=[get_member(workspace, e) for e in o["add"]], actor=actor)
            if o["remove"]:
                services.team_remove_members(team=team, memberships=[get_member(workspace, e) for e in o["remove"]], actor=actor)
            if o["rename"]:
                services.team_rename(team=team, name=o["rename"], actor=actor)
            if o["delete"]:
                services.team_delete(team=team, actor=actor)
                self.stdout.write(f"Team {team.name!r} deleted.")
                return
        except ServiceError as exc:
            raise CommandError(exc.message) from exc
        members = ", ".join(sorted(m.email for m in team.members.select_related("user"))) or "no members"
        self.stdout.write(f"Team {team.name!r} in {workspace.slug}: {members}")
