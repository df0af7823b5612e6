"""Create an API key and print it once: a personal key, ``create_api_key SLUG EMAIL --name NAME [--scope S ...]``,
or a workspace service key, ``create_api_key SLUG --service --name NAME --scope S [--scope S ...]`` (what an Owner
does on the API keys page, for automation: a governance connector's key, a SIEM's)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from audit.record import Actor
from workspaces.exceptions import ServiceError
from workspaces.models import Membership, Workspace
from workspaces.roles import ApiScope
from workspaces.services import api_key_create


class Command(BaseCommand):
    help = ("Create a personal API key for EMAIL, or (--service) a workspace service key with scopes, in workspace "
            "SLUG and print it (it is never shown again).")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("slug")
        parser.add_argument("email", nargs="?", help="the member a personal key acts as (not with --service)")
        parser.add_argument("--name", required=True)
        parser.add_argument("--service", action="store_true", help="a workspace service key (needs --scope)")
        parser.add_argument("--scope", action="append", default=[], choices=ApiScope.values, metavar="SCOPE",
                            help=f"repeatable; one of: {', '.join(ApiScope.values)}. A personal key's scopes narrow "
                                 "its member's role.")

    def handle(self, *args: Any, slug: str, email: str | None, name: str, service: bool, scope: list[str],
               **options: Any) -> None:
        actor = Actor.system("manage.py create_api_key")
        membership: Membership | None = None
        if service:
            if email:
                raise CommandError("A service key belongs to the workspace: leave EMAIL out, or drop --service.")
            if not scope:
                raise CommandError(f"A service key needs at least one --scope ({', '.join(ApiScope.values)}).")
            workspace = Workspace.objects.filter(slug=slug).first()
            if workspace is None:
                raise CommandError(f"No workspace {slug!r}.")
        else:
            if not email:
                raise CommandError("Give the member's EMAIL for a personal key, or --service for a service key.")
            membership = Membership.objects.select_related("workspace", "user").filter(
                workspace__slug=slug, user__email__iexact=email
            ).first()
            if membership is None:
                raise CommandError(f"{email} is not a member of workspace {slug!r}.")
            workspace = membership.workspace
        try:
            _, plain = api_key_create(workspace=workspace, membership=membership, name=name, scopes=scope, actor=actor)
        except ServiceError as exc:
            raise CommandError(exc.message) from exc
        self.stderr.write("Key created. Copy it now: only its hash is stored.")
        self.stdout.write(plain)
