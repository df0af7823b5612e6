"""Create a workspace and its first Owner: ``createworkspace SLUG --name NAME --owner EMAIL [--password P]``."""

from __future__ import annotations

import secrets

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from audit.record import Actor
from workspaces.exceptions import ServiceError
from workspaces.services import user_get_or_create, workspace_create


class Command(BaseCommand):
    help = "Create a workspace whose Owner is EMAIL (the account is created when missing) and print the login."

    def add_arguments(self, parser) -> None:
        parser.add_argument("slug")
        parser.add_argument("--name", required=True)
        parser.add_argument("--owner", required=True, help="Owner's email")
        parser.add_argument("--password", help="Password for a new owner account (default: a random one, printed)")

    def handle(self, *args, slug: str, name: str, owner: str, password: str | None, **options) -> None:
        actor = Actor.system("manage.py createworkspace")
        generated = None
        try:
            with transaction.atomic():
                user, created = user_get_or_create(email=owner)
                if created:
                    generated = password or secrets.token_urlsafe(12)
                    user.set_password(generated)
                    user.save(update_fields=["password"])
                workspace = workspace_create(slug=slug, name=name, owner=user, actor=actor)
        except (ServiceError, ValidationError) as exc:
            message = exc.message if isinstance(exc, ServiceError) else "; ".join(exc.messages)
            raise CommandError(message) from exc
        self.stdout.write(self.style.SUCCESS(f"Workspace {workspace.slug!r} created."))
        self.stdout.write(f"  Owner:    {user.email}")
        if generated:
            self.stdout.write(f"  Password: {generated}")
        else:
            self.stdout.write("  Password: (existing account: unchanged)")
        self.stdout.write(f"  Sign in:  /login/  then open /w/{workspace.slug}/")
