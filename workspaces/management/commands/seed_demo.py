"""A demo workspace with an owner, members in every role, teams and repositories."""

from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import transaction

from audit.record import Actor
from workspaces import services
from workspaces.models import Membership, User, Workspace
from workspaces.roles import Role

DEMO_SLUG = "acme"
DEMO_OWNER = "owner@acme.test"
DEMO_PASSWORD = "gatehouse-demo"  # noqa: S105 - printed at start, demo data only

PEOPLE = [
    ("manager@acme.test", "Mara Manager", Role.MANAGER),
    ("member@acme.test", "Milo Member", Role.MEMBER),
    ("private@acme.test", "Pia Private", Role.MEMBER),
    ("collab@acme.test", "Cole Collaborator", Role.COLLABORATOR),
    ("auditor@acme.test", "Audra Auditor", Role.MEMBER),  # a Member with the auditor permission
]


class Command(BaseCommand):
    help = "Create (once) the demo workspace 'acme' and print its URL and the owner's credentials."

    def handle(self, *args, **options) -> None:
        actor = Actor.system("manage.py seed_demo")
        with transaction.atomic():
            if not Workspace.objects.filter(slug=DEMO_SLUG).exists():
                owner, _ = services.user_get_or_create(email=DEMO_OWNER, full_name="Olive Owner", password=DEMO_PASSWORD)
                ws = services.workspace_create(slug=DEMO_SLUG, name="Acme Corp", owner=owner, actor=actor)
                members = {}
                for email, name, role in PEOPLE:
                    members[email] = services.membership_add(
                        workspace=ws, email=email, full_name=name, role=role, password=DEMO_PASSWORD, actor=actor,
                        visibility="private" if email.startswith("private") else "public", source="seed_demo",
                    )
                services.membership_set_auditor(membership=members["auditor@acme.test"], is_auditor=True, actor=actor)
                platform = services.team_create(workspace=ws, name="Platform", actor=actor)
                web = services.team_create(workspace=ws, name="Web", actor=actor)
                owner_m = Membership.objects.get(workspace=ws, user=owner)
                services.team_add_members(team=platform, memberships=[owner_m, members["manager@acme.test"]], actor=actor)
                services.team_add_members(team=web, memberships=[members["member@acme.test"], members["private@acme.test"]], actor=actor)
                prod = services.repository_create(workspace=ws, name="prod-images", environment="production", actor=actor)
                staging = services.repository_create(workspace=ws, name="staging-packages", environment="staging", actor=actor)
                services.repository_grant(repository=prod, team=platform, permission="admin", actor=actor)
                services.repository_grant(repository=staging, team=web, permission="write", actor=actor)
                services.repository_grant(repository=staging, membership=members["collab@acme.test"], permission="read", actor=actor)
                self.stdout.write(self.style.SUCCESS("Demo workspace created."))
            else:
                owner = User.objects.get(email__iexact=DEMO_OWNER)
                self.stdout.write("Demo workspace already present.")
        base = settings.PUBLIC_BASE_URL
        self.stdout.write("")
        self.stdout.write(f"  Portal:    {base}/login/")
        self.stdout.write(f"  Workspace: {base}/w/{DEMO_SLUG}/")
        self.stdout.write(f"  Owner:     {DEMO_OWNER}   {self._password_line(owner)}")
        self.stdout.write(f"  Others:    {', '.join(p[0] for p in PEOPLE)} (the demo password, unless changed)")

    @staticmethod
    def _password_line(owner: User) -> str:
        """The demo password only while it still signs the Owner in: never a stale one."""
        workspace = Workspace.objects.filter(slug=DEMO_SLUG).first()
        if workspace is not None and workspace.saml_only:
            return (f"password login is off (SAML-only is enforced): sign in through SSO, or with a recovery code at "
                    f"{settings.PUBLIC_BASE_URL}/saml/{DEMO_SLUG}/break-glass/")
        if not owner.check_password(DEMO_PASSWORD):
            return "password: changed since the demo was created (the demo password no longer works)"
        return f"password: {DEMO_PASSWORD}"
