"""Enforce SAML-only for a workspace, or stop, as the SSO page's step 4 does; also new recovery codes and the staged
IdP change. The same services and rules as the page (a successful Test SSO within 24 hours before enforcing)."""

from __future__ import annotations

import getpass
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from audit.record import Actor
from workspaces.exceptions import ServiceError
from workspaces.models import Workspace

from ... import selectors, services


class Command(BaseCommand):
    help = ("SAML-only for a workspace: 'on' (prints the Owners' recovery codes once: store them), 'off', "
            "'new-codes' (replaces the unused recovery codes), 'discard-staged' (drops a staged IdP change), "
            "'status'.")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("slug")
        parser.add_argument("action", choices=["on", "off", "new-codes", "discard-staged", "status"])

    def handle(self, *args: Any, **opts: Any) -> None:
        workspace = Workspace.objects.filter(slug=opts["slug"]).first()
        if workspace is None:
            raise CommandError(f"No workspace {opts['slug']!r}.")
        try:
            who = getpass.getuser()
        except Exception:  # noqa: BLE001 - no login name in some containers
            who = "unknown"
        actor = Actor.system(f"manage.py sso_enforce (by {who})")
        action = opts["action"]
        try:
            if action in ("on", "off"):
                codes = services.saml_only_set(workspace=workspace, actor=actor, enabled=action == "on")
                workspace.refresh_from_db()
                self._codes(codes)
            elif action == "new-codes":
                self._codes(services.break_glass_codes_regenerate(workspace=workspace, actor=actor))
            elif action == "discard-staged":
                services.saml_pending_discard(workspace=workspace, actor=actor)
                self.stdout.write("The staged IdP change is discarded; the live IdP is unchanged.")
        except ServiceError as exc:
            raise CommandError(exc.message) from exc
        cfg = selectors.saml_settings_for(workspace)
        tested = (f"last successful Test SSO {cfg.last_test_succeeded_at:%Y-%m-%d %H:%M} UTC"
                  if cfg and cfg.last_test_succeeded_at else "no successful Test SSO yet")
        self.stdout.write(
            f"{workspace.slug}: SAML-only {'enforced' if workspace.saml_only else 'off'}; "
            f"{selectors.break_glass_codes_left(workspace)} unused recovery codes; {tested}"
        )

    def _codes(self, codes: list[str]) -> None:
        if not codes:
            return
        self.stdout.write("Recovery codes for Owners (shown once: store them now; they work at /saml/<slug>/break-glass/):")
        for code in codes:
            self.stdout.write(f"  {code}")
