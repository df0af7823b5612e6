"""Create a personal API key: ``create_api_key SLUG EMAIL --name NAME``; prints the key once."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from audit.record import Actor
from workspaces.exceptions import ServiceError
from workspaces.models import Membership
from workspaces.services import api_key_create


class Command(BaseCommand):
    help = "Create a personal API key for EMAIL in workspace SLUG and print it (it is never shown again)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("slug")
        parser.add_argument("email")
        parser.add_argument("--name", required=True)

    def handle(self, *args, slug: str, email: str, name: str, **options) -> None:
        membership = Membership.objects.select_related("workspace", "user").filter(
            workspace__slug=slug, user__email__iexact=email
        ).first()
        if membership is None:
            raise CommandError(f"{email} is not a member of workspace {slug!r}.")
        try:
            _, plain = api_key_create(
                workspace=membership.workspace, membership=membership, name=name,
                actor=Actor.system("manage.py create_api_key"),
            )
        except ServiceError as exc:
            raise CommandError(exc.message) from exc
        self.stderr.write("Key created. Copy it now: only its hash is stored.")
        self.stdout.write(plain)
