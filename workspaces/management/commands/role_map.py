"""Automate the role mapping page: ``role_map SLUG [--set VALUE=ROLE ...] [--remove VALUE ...] [--unknown reject|default]
[--preset cloudinary] [--list]``."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from workspaces import services
from workspaces.exceptions import ServiceError
from workspaces.models import UnknownIdpRole

from ._helpers import command_actor, get_workspace


def _pair(text: str) -> tuple[str, str]:
    value, sep, role = text.rpartition("=")
    if not sep or not value.strip() or not role.strip():
        raise CommandError(f"--set takes VALUE=ROLE (got {text!r}); for example --set media_library_user=collaborator.")
    return value, role


class Command(BaseCommand):
    help = "Show or change how the workspace's IdP role values (SCIM role) map to Gatehouse roles."

    def add_arguments(self, parser) -> None:
        parser.add_argument("slug")
        parser.add_argument("--set", action="append", default=[], metavar="VALUE=ROLE",
                            help="Map an IdP value to owner, manager, member or collaborator (repeatable).")
        parser.add_argument("--remove", action="append", default=[], metavar="VALUE",
                            help="Remove the mapping of an IdP value (repeatable).")
        parser.add_argument("--unknown", choices=UnknownIdpRole.values,
                            help="A value no mapping names: refuse it (reject) or give the default role (default).")
        parser.add_argument("--preset", choices=sorted(services.ROLE_MAP_PRESETS),
                            help="Add a preset's mappings (other mappings stay).")
        parser.add_argument("--list", action="store_true", help="Print the mapping (also printed after any change).")

    def handle(self, *args, slug: str, **o) -> None:
        workspace = get_workspace(slug)
        actor = command_actor("role_map")
        try:
            if o["preset"]:
                services.role_map_apply_preset(workspace=workspace, preset=o["preset"], actor=actor)
            if o["set"]:
                services.role_map_set(workspace=workspace, mappings=dict(_pair(t) for t in o["set"]), actor=actor)
            if o["remove"]:
                services.role_map_remove(workspace=workspace, values=o["remove"], actor=actor)
            if o["unknown"]:
                workspace = services.role_map_set_unknown(workspace=workspace, policy=o["unknown"], actor=actor)
        except ServiceError as exc:
            raise CommandError(exc.message) from exc
        workspace.refresh_from_db()
        mapping = services.role_map(workspace)
        self.stdout.write(f"Role mapping of {workspace.slug} ({len(mapping)} values):")
        for value, role in mapping.items():
            self.stdout.write(f"  {value} -> {role}")
        self.stdout.write("  (Gatehouse's own role names are accepted as themselves unless mapped otherwise)")
        unknown = ("refused, naming the accepted values" if workspace.unknown_idp_role == UnknownIdpRole.REJECT
                   else f"given the default role ({workspace.default_role})")
        self.stdout.write(f"Any other value is {unknown}.")
