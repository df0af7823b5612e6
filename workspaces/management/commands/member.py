"""Automate what the member page does: ``member SLUG EMAIL [--add] [--detach] [--role R] [--deactivate|--reactivate] ...``."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from workspaces import services
from workspaces.exceptions import ServiceError
from workspaces.roles import Role

from ._helpers import command_actor, get_member, get_workspace


class Command(BaseCommand):
    help = "Add a member, change their role, visibility or auditor permission, deactivate or reactivate them."

    def add_arguments(self, parser) -> None:
        parser.add_argument("slug")
        parser.add_argument("email")
        parser.add_argument("--add", action="store_true", help="Add EMAIL to the workspace (account created when missing).")
        parser.add_argument("--name", default="", help="Full name for a new account.")
        parser.add_argument("--role", choices=Role.values)
        parser.add_argument("--visibility", choices=["public", "private"])
        parser.add_argument("--auditor", choices=["on", "off"])
        state = parser.add_mutually_exclusive_group()
        state.add_argument("--deactivate", action="store_true")
        state.add_argument("--reactivate", action="store_true")
        state.add_argument("--remove", action="store_true",
                           help="Remove the member from the workspace (the account stays), as the member page does.")
        parser.add_argument("--detach", action="store_true",
                            help="Detach the member from the identity provider: the portal then owns its fields.")

    def handle(self, *args, slug: str, email: str, **o) -> None:
        workspace = get_workspace(slug)
        actor = command_actor("member")
        try:
            if o["add"]:
                member = services.membership_add(
                    workspace=workspace, email=email, full_name=o["name"], role=o["role"] or workspace.default_role,
                    actor=actor, source="command",
                )
                self.stdout.write(f"Added {member.email} as {member.get_role_display()}.")
            member = get_member(workspace, email)
            if o["remove"]:
                services.membership_remove(membership=member, actor=actor)
                self.stdout.write(f"Removed {member.email} from {workspace.slug}; the account stays.")
                return
            if o["detach"]:
                services.membership_detach(membership=member, actor=actor)
                self.stdout.write(f"{member.email} is detached from the identity provider.")
            if o["role"] and not o["add"]:
                services.membership_change_role(membership=member, role=o["role"], actor=actor)
            if o["visibility"]:
                services.membership_set_visibility(membership=member, visibility=o["visibility"], actor=actor)
            if o["auditor"]:
                services.membership_set_auditor(membership=member, is_auditor=o["auditor"] == "on", actor=actor)
            if o["deactivate"]:
                services.membership_deactivate(membership=member, actor=actor, reason="manage.py member --deactivate")
            if o["reactivate"]:
                services.membership_reactivate(membership=member, actor=actor)
        except ServiceError as exc:
            raise CommandError(exc.message) from exc
        member.refresh_from_db()
        status = "active" if member.is_active else "deactivated"
        self.stdout.write(
            f"{member.email} in {workspace.slug}: {member.get_role_display()}, {member.visibility}, {status}"
            f"{', auditor' if member.is_auditor else ''}"
        )
