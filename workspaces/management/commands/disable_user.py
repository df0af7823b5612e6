"""``disable_user EMAIL --reason TEXT``: support disables a global account and revokes its credentials everywhere."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from audit.record import Actor
from workspaces.models import User
from workspaces.services import user_disable


class Command(BaseCommand):
    help = "Disable a global account: it can no longer sign in, and each of its workspaces revokes its credentials."

    def add_arguments(self, parser) -> None:
        parser.add_argument("email")
        parser.add_argument("--reason", required=True, help="Why (recorded in the audit log of every workspace).")

    def handle(self, *args, email: str, reason: str, **options) -> None:
        user = User.objects.filter(email__iexact=email.strip()).first()
        if user is None:
            raise CommandError(f"No account with email {email!r}.")
        if not user.is_active:
            self.stdout.write(f"{user.email} is already disabled.")
            return
        jobs = user_disable(user=user, actor=Actor.system("manage.py disable_user"), reason=reason)
        self.stdout.write(
            f"Disabled {user.email}; credential revocation queued in {len(jobs)} workspace(s). "
            "Follow it with manage.py deprovision_status."
        )
