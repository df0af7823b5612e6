"""Automate the provisioning page's policy card: ``workspace_policy SLUG [--jit/--no-jit] [--default-role R]
[--idp-may-grant-owner/--no-idp-may-grant-owner] [--api-may-override-idp/--no-api-may-override-idp]``; with no option, print the policy."""

from __future__ import annotations

from argparse import BooleanOptionalAction
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from workspaces import services
from workspaces.exceptions import ServiceError
from workspaces.roles import Role

from ._helpers import command_actor, get_workspace


class Command(BaseCommand):
    help = "Show or change what the workspace's identity provider may do (JIT, default role, granting Owner)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("slug")
        parser.add_argument("--jit", action=BooleanOptionalAction, default=None,
                            help="Create unknown people at their first SSO login.")
        parser.add_argument("--default-role", choices=Role.values, default=None)
        parser.add_argument("--idp-may-grant-owner", action=BooleanOptionalAction, default=None,
                            help="Let SCIM, the role attribute and group sync make Owners (off is recommended).")
        parser.add_argument("--api-may-override-idp", action=BooleanOptionalAction, default=None,
                            help="Let the connector API (governance tools, access reviews) change what the IdP owns "
                                 "(off is recommended).")

    def handle(self, *args: Any, slug: str, **o: Any) -> None:
        workspace = get_workspace(slug)
        changes = {key: value for key, value in (
            ("jit_provisioning", o["jit"]), ("default_role", o["default_role"]),
            ("scim_may_grant_owner", o["idp_may_grant_owner"]), ("api_may_override_idp", o["api_may_override_idp"]),
        ) if value is not None}
        if changes:
            try:
                workspace = services.workspace_update_policy(workspace=workspace, actor=command_actor("workspace_policy"),
                                                             **changes)
            except ServiceError as exc:
                raise CommandError(exc.message) from exc
        self.stdout.write(
            f"{workspace.slug}: JIT {'on' if workspace.jit_provisioning else 'off'}, default role "
            f"{workspace.default_role}, the IdP {'may' if workspace.scim_may_grant_owner else 'may not'} grant Owner, "
            f"the connector API {'may' if workspace.api_may_override_idp else 'may not'} override the IdP"
        )
