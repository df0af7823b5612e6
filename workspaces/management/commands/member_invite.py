"""Invite a person, as the member page does: ``member_invite SLUG EMAIL [--role R] [--name N] [--resend|--revoke|--list]``."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from workspaces import selectors, services
from workspaces.exceptions import ServiceError
from workspaces.roles import Role

from ._helpers import command_actor, get_member, get_workspace


class Command(BaseCommand):
    help = ("Invite EMAIL to a workspace (an existing account joins when the person accepts; a new one chooses its "
            "password), or resend or revoke their open invitation.")

    def add_arguments(self, parser) -> None:
        parser.add_argument("slug")
        parser.add_argument("email", nargs="?", default="")
        parser.add_argument("--role", choices=Role.values, help="Role of a new member (default: the workspace's).")
        parser.add_argument("--name", default="", help="Full name for a new account.")
        action = parser.add_mutually_exclusive_group()
        action.add_argument("--resend", action="store_true", help="Send a new link; the earlier one stops working.")
        action.add_argument("--revoke", action="store_true", help="The open link stops working.")
        action.add_argument("--list", action="store_true", help="List the workspace's open invitations.")

    def handle(self, *args, slug: str, email: str, **o) -> None:
        workspace = get_workspace(slug)
        actor = command_actor("member_invite")
        if o["list"]:
            for inv in selectors.invitations_open(workspace):
                kind = "existing account" if inv.membership.consent_pending else "new account"
                self.stdout.write(f"{inv.email}\t{kind}\tsent {inv.created_at:%Y-%m-%d %H:%M}\t"
                                  f"until {inv.expires_at:%Y-%m-%d %H:%M} UTC")
            return
        if not email:
            raise CommandError("Name the person's EMAIL (or use --list).")
        try:
            if o["resend"] or o["revoke"]:
                member = get_member(workspace, email)
                invitation = selectors.invitations_open(workspace).filter(membership=member).first()
                if invitation is None:
                    raise CommandError(f"{member.email} has no open invitation in {workspace.slug}.")
                if o["resend"]:
                    services.invitation_resend(invitation=invitation, actor=actor)
                    self.stdout.write(f"A new invitation went to {member.email}; the earlier link no longer works.")
                else:
                    services.invitation_revoke(invitation=invitation, actor=actor)
                    self.stdout.write(f"The invitation to {member.email} no longer works.")
                return
            member = services.membership_add(
                workspace=workspace, email=email, full_name=o["name"], role=o["role"] or workspace.default_role,
                actor=actor, source="command", invite=True,
            )
        except ServiceError as exc:
            raise CommandError(exc.message) from exc
        if member.consent_pending:
            self.stdout.write(f"{member.email} has an account already: invited; they join when they accept.")
        elif member.invitations.exists():
            self.stdout.write(f"Added {member.email}; an invitation to choose a password was sent.")
        else:
            self.stdout.write(f"Added {member.email} (its email domain is verified by {workspace.slug}: no invitation).")
