"""A workspace's SP key pair from a shell: show it, roll it over, and switch request signing and required encryption.

The same services and rules as the SSO settings page; prints certificates and fingerprints, never the private key.
"""

from __future__ import annotations

from argparse import BooleanOptionalAction
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from audit.record import Actor
from workspaces.exceptions import ServiceError
from workspaces.models import Workspace

from ... import selectors, services, sp_keys
from ...models import SpKeyState
from ...sp import sp_entity_id

NEXT_STEP = {
    SpKeyState.NEXT: "Give the NEXT certificate to your IdP (Okta: Signature and Encryption Certificate; Entra ID: "
                     "Token encryption), then: sso_sp_key {slug} activate",
    SpKeyState.PREVIOUS: "Once your IdP encrypts to the ACTIVE certificate (run Test SSO), end the grace period: "
                         "sso_sp_key {slug} retire",
}


class Command(BaseCommand):
    help = "Show, prepare, activate or retire a workspace's SAML SP key; turn request signing and required " \
           "encryption on or off."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("slug")
        parser.add_argument("action", choices=["show", "prepare", "activate", "retire"],
                            help="show: the keys; prepare: the first key, or the next one of a rollover; "
                                 "activate: the next key signs from now on; retire: the previous key stops decrypting.")
        parser.add_argument("--sign-requests", action=BooleanOptionalAction, default=None,
                            help="Sign AuthnRequests with the active key (RSA-SHA256).")
        parser.add_argument("--require-encryption", action=BooleanOptionalAction, default=None,
                            help="Refuse assertions that are not encrypted to this workspace's key.")

    def handle(self, *args: Any, **opts: Any) -> None:
        workspace = Workspace.objects.filter(slug=opts["slug"]).first()
        if workspace is None:
            raise CommandError(f"No workspace with slug {opts['slug']!r}.")
        actor = Actor.system("manage.py sso_sp_key")
        steps = {"prepare": services.sp_key_prepare, "activate": services.sp_key_activate,
                 "retire": services.sp_key_retire}
        try:
            if opts["action"] in steps:
                key = steps[opts["action"]](workspace=workspace, actor=actor)
                self.stdout.write(self.style.SUCCESS(f"{opts['action']}: {key.fingerprint_sha256} is now {key.state}"))
            if opts["sign_requests"] is not None or opts["require_encryption"] is not None:
                services.sp_options_set(workspace=workspace, actor=actor, sign_authn_requests=opts["sign_requests"],
                                        require_encrypted_assertions=opts["require_encryption"])
        except ServiceError as exc:
            raise CommandError(exc.message) from None
        self._show(workspace)

    def _show(self, workspace: Workspace) -> None:
        cfg = selectors.saml_settings_for(workspace)
        keys = selectors.sp_keys_for(cfg)
        slug = workspace.slug
        self.stdout.write(f"SP entity ID: {sp_entity_id(slug)}")
        if cfg is not None:
            self.stdout.write(f"Sign AuthnRequests: {'on' if cfg.sign_authn_requests else 'off'}; "
                              f"require encrypted assertions: {'on' if cfg.require_encrypted_assertions else 'off'}")
        if not keys:
            self.stdout.write(f"No SP key yet: sso_sp_key {slug} prepare")
            return
        for key in keys:
            self.stdout.write("")
            self.stdout.write(f"{SpKeyState(key.state).label}")
            self.stdout.write(f"  SHA-256 fingerprint: {key.fingerprint_sha256}")
            self.stdout.write(f"  SHA-1 thumbprint:    {sp_keys.sha1_fingerprint(key.cert_pem)}")
            self.stdout.write(f"  valid until:         {key.not_valid_after:%Y-%m-%d}")
            self.stdout.write(key.cert_pem.rstrip())
        for state, hint in NEXT_STEP.items():
            if any(k.state == state for k in keys):
                self.stdout.write("")
                self.stdout.write(self.style.WARNING(hint.format(slug=slug)))
