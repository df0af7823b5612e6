"""SCIM automation.

``scim_credential SLUG --kind bearer|basic --name NAME``: create a credential and print its secret once
(the bearer token, or ``key:secret``) on stdout. ``scim_credential SLUG --enable`` / ``--disable``:
switch SCIM on or off. ``--revoke KEY_ID``: revoke a credential. Both may be combined
(``--enable --kind bearer --name Okta``). Audited with the system actor ``manage.py scim_credential``.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from audit.record import Actor
from workspaces.exceptions import ServiceError
from workspaces.models import Workspace

from ...models import ScimCredential
from ...services import scim_credential_create, scim_credential_revoke, scim_set_enabled


class Command(BaseCommand):
    help = "Create a SCIM credential for workspace SLUG and print its secret once; or switch SCIM on/off."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("slug")
        parser.add_argument("--kind", choices=["bearer", "basic"], help="Credential kind to create.")
        parser.add_argument("--name", help="Name of the new credential, e.g. 'Okta production'.")
        switch = parser.add_mutually_exclusive_group()
        switch.add_argument("--enable", action="store_true", help="Switch SCIM provisioning on.")
        switch.add_argument("--disable", action="store_true", help="Switch SCIM provisioning off.")
        parser.add_argument("--revoke", metavar="KEY_ID", help="Revoke the credential with this key id.")

    def handle(self, *args: Any, slug: str, kind: str | None, name: str | None, enable: bool, disable: bool,
               revoke: str | None, **options: Any) -> None:
        workspace = Workspace.objects.filter(slug=slug).first()
        if workspace is None:
            raise CommandError(f"No workspace {slug!r}.")
        if kind and not name:
            raise CommandError("--kind needs --name (what the credential is for).")
        if name and not kind:
            raise CommandError("--name needs --kind bearer or --kind basic.")
        if not (kind or enable or disable or revoke):
            raise CommandError("Nothing to do: give --kind and --name, --enable, --disable or --revoke.")
        actor = Actor.system("manage.py scim_credential")
        try:
            if enable or disable:
                scim_set_enabled(workspace=workspace, enabled=enable, actor=actor)
                self.stderr.write(f"SCIM provisioning is {'on' if enable else 'off'} for {slug}.")
            if revoke:
                credential = ScimCredential.objects.filter(workspace=workspace, key_id=revoke).first()
                if credential is None:
                    raise CommandError(f"No SCIM credential with key id {revoke!r} in {slug!r}.")
                scim_credential_revoke(credential=credential, actor=actor)
                self.stderr.write(f"Credential {credential.name!r} ({revoke}) revoked.")
            if kind:
                credential, secret = scim_credential_create(workspace=workspace, kind=kind, name=name or "", actor=actor)
                self.stderr.write(
                    f"Credential {credential.name!r} created (key id {credential.key_id}). "
                    "Copy it now: only its hash is stored."
                )
                if not workspace.scim_enabled and not enable:
                    self.stderr.write(f"SCIM is off for {slug}: switch it on with --enable.")
                self.stdout.write(secret)
        except ServiceError as exc:
            raise CommandError(exc.message) from exc
