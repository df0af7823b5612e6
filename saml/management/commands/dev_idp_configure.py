"""Point a workspace's SSO at the development IdP (DEBUG only), through the audited settings service."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from audit.record import Actor
from workspaces.exceptions import ServiceError
from workspaces.models import Membership, Workspace

from ... import selectors, services
from ...dev_idp import idp
from ...metadata import parse_idp_metadata
from ...sp import login_url


class Command(BaseCommand):
    help = ("Development only (DEBUG): configure a workspace's SSO with the portal's development IdP "
            "(/dev-idp/<slug>/) and print how to try it. Leaves a workspace with another IdP alone unless --force.")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("slug")
        parser.add_argument("--force", action="store_true",
                            help="Replace the workspace's IdP even when another one is configured.")

    def handle(self, *args: Any, **opts: Any) -> None:
        if not settings.DEBUG:
            raise CommandError("The development IdP runs only with DEBUG on; configure a real IdP with sso_configure.")
        slug = opts["slug"]
        workspace = Workspace.objects.filter(slug=slug).first()
        if workspace is None:
            raise CommandError(f"No workspace with slug {slug!r}.")
        xml = idp.metadata_xml(slug)
        cfg = selectors.saml_settings_for(workspace)
        wanted = parse_idp_metadata(xml)
        if cfg is not None and cfg.idp_entity_id == wanted.entity_id and cfg.certificates == wanted.certificates:
            self.stdout.write("SSO already uses the development IdP.")
        elif cfg is not None and cfg.idp_entity_id and cfg.idp_entity_id != wanted.entity_id and not opts["force"]:
            self.stdout.write(f"SSO uses another IdP ({cfg.idp_entity_id}); left as it is (--force replaces it).")
            return
        else:
            try:
                services.saml_settings_save(workspace=workspace, actor=Actor.system("manage.py dev_idp_configure"),
                                            metadata_xml=xml)
            except ServiceError as exc:
                raise CommandError(exc.message) from None
            self.stdout.write(self.style.SUCCESS("SSO now uses the development IdP."))
        self._print_how_to_try(workspace)

    def _print_how_to_try(self, workspace: Workspace) -> None:
        base, slug = settings.PUBLIC_BASE_URL, workspace.slug
        owner = (Membership.objects.filter(workspace=workspace, role="owner", is_active=True)
                 .select_related("user").order_by("pk").first())
        others = Membership.objects.filter(workspace=workspace, is_active=True).exclude(role="owner")
        member = (others.filter(role="member", is_auditor=False).select_related("user").order_by("user__email").first()
                  or others.select_related("user").order_by("user__email").first())
        self.stdout.write(f"  Development IdP: {idp.entity_id(slug)}")
        self.stdout.write(f"  Try SSO: as the Owner, press Test SSO on {base}/w/{slug}/settings/sso/"
                          + (f" and sign in as {owner.user.email} at the IdP" if owner else ""))
        self.stdout.write(f"           then sign in as {member.user.email if member else 'a member'} through "
                          f"{login_url(slug)} (a private window keeps your Owner session)")
