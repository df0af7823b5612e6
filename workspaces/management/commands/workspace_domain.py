"""Automate the email domains page: ``workspace_domain SLUG add|verify|remove|list [DOMAIN]``, and
``workspace_domain --recheck`` to run the periodic re-check and expiry now (with progress)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from workspaces import selectors, services
from workspaces.domains import InvalidDomain, normalise_domain, record_name, record_value
from workspaces.exceptions import ServiceError
from workspaces.models import DomainClaim, Workspace

from ._helpers import command_actor, get_workspace


class Command(BaseCommand):
    help = ("Claim, verify (DNS TXT record), remove or list a workspace's email domains; --recheck runs the "
            "periodic re-check of verified domains and the expiry of pending claims now.")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("slug", nargs="?", help="The workspace (not with --recheck).")
        parser.add_argument("action", nargs="?", choices=["add", "verify", "remove", "list"], default="list")
        parser.add_argument("domain", nargs="?", default="", help="The email domain (add, verify, remove).")
        parser.add_argument("--recheck", action="store_true",
                            help="Re-check every due verified domain and expire old pending claims, all workspaces.")

    def handle(self, *args: Any, **o: Any) -> None:
        if o["recheck"]:
            self._recheck()
            return
        if not o["slug"]:
            raise CommandError("Name the workspace: manage.py workspace_domain SLUG add|verify|remove|list [DOMAIN].")
        workspace = get_workspace(o["slug"])
        action, domain = o["action"], o["domain"]
        actor = command_actor("workspace_domain")
        if action != "list" and not domain:
            raise CommandError(f"Name the domain: manage.py workspace_domain {workspace.slug} {action} DOMAIN.")
        try:
            if action == "add":
                claim = services.domain_claim_add(workspace=workspace, domain=domain, actor=actor)
                self.stdout.write(f"Claimed {claim.domain} (pending until {claim.expires_at:%Y-%m-%d %H:%M} UTC).")
                self._record(claim)
                self.stdout.write(f"Then run: manage.py workspace_domain {workspace.slug} verify {claim.domain}")
            elif action == "verify":
                claim = services.domain_claim_verify(claim=self._claim(workspace, domain), actor=actor)
                if claim.verified_at is not None and not claim.last_error:
                    self.stdout.write(self.style.SUCCESS(f"{claim.domain} is verified."))
                else:
                    raise CommandError(claim.last_error)
            elif action == "remove":
                claim = self._claim(workspace, domain)
                services.domain_claim_remove(claim=claim, actor=actor)
                self.stdout.write(f"Removed the claim to {claim.domain}.")
            else:
                self._list(workspace)
        except ServiceError as exc:
            raise CommandError(exc.message) from None

    def _claim(self, workspace: Workspace, domain: str) -> DomainClaim:
        try:
            normalised = normalise_domain(domain)
        except InvalidDomain as exc:
            raise CommandError(str(exc)) from None
        claim = selectors.domain_claims_of(workspace).select_related("workspace").filter(domain=normalised).first()
        if claim is None:
            raise CommandError(f"{workspace.slug} does not claim {normalised}. Claim it with: "
                               f"manage.py workspace_domain {workspace.slug} add {normalised}")
        return claim

    def _record(self, claim: DomainClaim) -> None:
        self.stdout.write(f'Publish: {record_name(claim.domain)}  TXT  "{record_value(claim.token)}"')

    def _list(self, workspace: Workspace) -> None:
        claims = list(selectors.domain_claims_of(workspace))
        if not claims:
            self.stdout.write(f"{workspace.slug} claims no email domain.")
        for claim in claims:
            if claim.verified_at is not None:
                state = f"verified {claim.verified_at:%Y-%m-%d %H:%M} UTC"
                if claim.last_checked_at:
                    state += f", last checked {claim.last_checked_at:%Y-%m-%d %H:%M} UTC"
            else:
                state = f"pending, expires {claim.expires_at:%Y-%m-%d %H:%M} UTC" if claim.expires_at else "pending"
            self.stdout.write(f"{claim.domain}: {state}")
            self._record(claim)
            if claim.last_error:
                self.stdout.write(f"  last check: {claim.last_error}")

    def _recheck(self) -> None:
        def progress(index: int, total: int, claim: DomainClaim) -> None:
            self.stdout.write(f"[{index}/{total}] {claim.domain} ({claim.workspace.slug})")

        counts = services.domain_claims_recheck(progress=progress)
        self.stdout.write(", ".join(f"{name}: {value}" for name, value in counts.items()))
