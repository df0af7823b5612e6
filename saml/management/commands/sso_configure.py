"""Configure a workspace's SSO from a metadata file, with the same validation as the settings page."""

from __future__ import annotations

from argparse import BooleanOptionalAction
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from audit.record import Actor
from workspaces.domains import record_name, record_value
from workspaces.exceptions import ServiceError
from workspaces.models import Workspace
from workspaces.selectors import domain_claims_of
from workspaces.services import workspace_update_policy

from ... import services
from ...sp import acs_url, login_url, sp_entity_id


class Command(BaseCommand):
    help = "Set a workspace's SAML IdP from a metadata file and print the values to give the IdP."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("slug")
        parser.add_argument("--metadata", required=True, help="Path to the IdP metadata XML file.")
        parser.add_argument("--email-domain", action="append", default=None, dest="email_domains",
                            help="Claim an email domain for /login/ discovery (repeatable); it routes once verified by DNS: "
                                 "manage.py workspace_domain SLUG verify DOMAIN.")
        parser.add_argument("--jit", action=BooleanOptionalAction, default=None,
                            help="Create unknown members at their first SSO login (--no-jit: refuse them).")
        parser.add_argument("--idp-initiated", action=BooleanOptionalAction, default=None,
                            help="Accept logins started at the IdP's dashboard.")
        parser.add_argument("--group-attribute", default=None, help="Attribute carrying group names (default: groups).")
        parser.add_argument("--role-attribute", default=None,
                            help="Attribute carrying the member's role, mapped through manage.py role_map "
                                 "(empty string: roles from group mappings only).")
        parser.add_argument("--subject-attribute", default=None,
                            help="The IdP's immutable id for a person: NameID (persistent), or an attribute name "
                                 "(empty string: email only).")

    def handle(self, *args: Any, **opts: Any) -> None:
        workspace = Workspace.objects.filter(slug=opts["slug"]).first()
        if workspace is None:
            raise CommandError(f"No workspace with slug {opts['slug']!r}.")
        try:
            with open(opts["metadata"], encoding="utf-8") as fh:
                xml = fh.read()
        except OSError as exc:
            raise CommandError(f"Cannot read {opts['metadata']}: {exc.strerror}") from None
        actor = Actor.system("manage.py sso_configure")
        try:
            saved = services.saml_settings_save(
                workspace=workspace, actor=actor, metadata_xml=xml, email_domains=opts["email_domains"],
                idp_initiated=opts["idp_initiated"], groups_attribute=opts["group_attribute"],
                role_attribute=opts["role_attribute"], subject_attribute=opts["subject_attribute"],
            )
            if opts["jit"] is not None:
                workspace_update_policy(workspace=workspace, actor=actor, jit_provisioning=opts["jit"])
        except ServiceError as exc:
            raise CommandError(exc.message) from None
        slug = workspace.slug
        if saved.pending_idp:
            self.stdout.write(self.style.WARNING(
                "SAML-only is enforced: the new IdP is STAGED. The current IdP keeps working until an Owner runs "
                "Test SSO (SSO settings page) and the new IdP answers it; that makes it live."))
        self.stdout.write(f"SP entity ID (Audience URI): {sp_entity_id(slug)}")
        self.stdout.write(f"ACS URL (Single sign on URL): {acs_url(slug)}")
        self.stdout.write(f"Login URL: {login_url(slug)}")
        for claim in domain_claims_of(workspace):
            if claim.verified_at is None:
                self.stdout.write(
                    f"Email domain {claim.domain}: pending, does not route /login/ until verified. Publish TXT "
                    f"{record_name(claim.domain)} \"{record_value(claim.token)}\", then run "
                    f"manage.py workspace_domain {slug} verify {claim.domain}"
                )
            else:
                self.stdout.write(f"Email domain {claim.domain}: verified")
