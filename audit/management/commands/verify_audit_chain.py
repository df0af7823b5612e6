"""Verify every workspace's audit hash chain and name the first broken link."""

from __future__ import annotations

from typing import Any

from django.apps import apps
from django.core.management.base import BaseCommand, CommandError, CommandParser

from audit.chain import chain_workspace_ids, verify_chain
from audit.record import Actor
from audit.services import audit_verification_record


class Command(BaseCommand):
    help = "Verify the audit log's hash chains; exits 1 and names the first broken event when one fails."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("slug", nargs="?", help="Only this workspace (default: every chain).")
        parser.add_argument(
            "--no-record", action="store_true",
            help="Do not store the result (by default it is stored and shown on the workspace's audit page).",
        )

    def handle(self, *args: Any, slug: str | None = None, no_record: bool = False, **options: Any) -> None:
        Workspace = apps.get_model("workspaces", "Workspace")
        names = dict(Workspace.objects.values_list("pk", "slug"))
        if slug:
            ids = [pk for pk, s in names.items() if s == slug]
            if not ids:
                raise CommandError(f"No workspace with slug {slug!r}. List them with: manage.py shell -c 'from workspaces.models import Workspace; print(list(Workspace.objects.values_list(\"slug\", flat=True)))'")
        else:
            ids = chain_workspace_ids()
        broken = 0
        for workspace_id in ids:
            label = names.get(workspace_id, "(global)" if workspace_id is None else f"workspace #{workspace_id}")
            report = verify_chain(workspace_id)
            if not no_record and workspace_id is not None:
                workspace = Workspace.objects.filter(pk=workspace_id).first()
                if workspace is not None:
                    audit_verification_record(
                        workspace=workspace, report=report, actor=Actor.system("verify_audit_chain"),
                    )
            if report.ok:
                since = f" (from the retention checkpoint at #{report.start_seq})" if report.start_seq else ""
                self.stdout.write(f"OK      {label}: {report.verified} events verified, chain intact up to #{report.last_seq}{since}")
            else:
                broken += 1
                where = f"event id {report.broken_event_id} (#{report.broken_seq})" if report.broken_event_id else f"after #{report.last_seq}"
                self.stdout.write(self.style.ERROR(
                    f"BROKEN  {label}: first broken link at {where}: {report.reason}; "
                    f"{report.verified} events before it verified"
                ))
        if broken:
            raise CommandError(f"{broken} audit chain(s) failed verification.", returncode=1)
        self.stdout.write(self.style.SUCCESS(f"All {len(ids)} audit chain(s) verified."))
