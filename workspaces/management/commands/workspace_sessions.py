"""Automate the sign-ins page: ``workspace_sessions SLUG [--max-age-hours N | --default-max-age] [--sign-everyone-out]
[--api-key-sso-hours N]``."""

from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from workspaces import services
from workspaces.exceptions import ServiceError
from workspaces.policy import window_label

from ._helpers import command_actor, get_workspace


class Command(BaseCommand):
    help = "Show or set how long sign-ins into a workspace last, or sign everyone out of it."

    def add_arguments(self, parser) -> None:
        parser.add_argument("slug")
        lifetime = parser.add_mutually_exclusive_group()
        lifetime.add_argument("--max-age-hours", type=int, metavar="N", help="Sign-ins last at most N hours.")
        lifetime.add_argument("--default-max-age", action="store_true", help="Back to the portal's default.")
        parser.add_argument("--sign-everyone-out", action="store_true",
                            help="End every web sign-in into the workspace (API keys and SCIM credentials keep working).")
        parser.add_argument("--api-key-sso-hours", type=int, metavar="N",
                            help="While SAML-only is on, an SSO sign-in authorises the member's personal API keys for "
                                 "N hours (1 to 2160).")

    def handle(self, *args, slug: str, **o) -> None:
        workspace = get_workspace(slug)
        actor = command_actor("workspace_sessions")
        try:
            if o["max_age_hours"] is not None or o["default_max_age"]:
                hours = o["max_age_hours"]
                workspace = services.workspace_set_session_max_age(
                    workspace=workspace, max_age=hours * 3600 if hours is not None else None, actor=actor
                )
            if o["api_key_sso_hours"] is not None:
                workspace = services.workspace_set_api_key_sso_window(
                    workspace=workspace, window=o["api_key_sso_hours"] * 3600, actor=actor
                )
            if o["sign_everyone_out"]:
                workspace = services.workspace_sign_everyone_out(workspace=workspace, actor=actor)
                self.stdout.write(f"Everyone was signed out of {workspace.slug}; they sign in again at their next request.")
        except ServiceError as exc:
            raise CommandError(exc.message) from exc
        age = workspace.session_max_age
        lasts = f"{age // 3600} hours" if age else f"the default, {settings.SESSION_COOKIE_AGE // 3600} hours"
        self.stdout.write(f"Sign-ins into {workspace.slug} last at most {lasts}.")
        self.stdout.write(f"An SSO sign-in authorises personal API keys in {workspace.slug} for "
                          f"{window_label(workspace.api_key_sso_window)} while SAML-only is on "
                          f"(it is {'on' if workspace.saml_only else 'off'}).")
