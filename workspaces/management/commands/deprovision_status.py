"""``deprovision_status [SLUG] [--sweep]``: deprovisioning jobs that are pending, running or failed, and done counts."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from workspaces.models import Workspace
from workspaces.selectors import deprovision_counts, deprovision_jobs_open
from workspaces.tasks import sweep_deprovision_jobs


class Command(BaseCommand):
    help = "Print deprovisioning jobs (pending, running, failed with their last error) and how many are done."

    def add_arguments(self, parser) -> None:
        parser.add_argument("slug", nargs="?", help="Only this workspace.")
        parser.add_argument("--sweep", action="store_true", help="First re-enqueue jobs that are overdue.")
        parser.add_argument("--limit", type=int, default=200, help="At most this many open jobs listed.")

    def handle(self, *args, slug: str | None, sweep: bool, limit: int, **options) -> None:
        workspace = None
        if slug:
            workspace = Workspace.objects.filter(slug=slug).first()
            if workspace is None:
                raise CommandError(f"No workspace {slug!r}.")
        if sweep:
            self.stdout.write(f"Re-enqueued {sweep_deprovision_jobs()} overdue job(s).")
        counts = deprovision_counts(workspace)
        scope = f"workspace {slug}" if slug else "all workspaces"
        self.stdout.write(
            f"Deprovisioning in {scope}: pending {counts['pending']}, running {counts['running']}, "
            f"failed {counts['failed']}, done {counts['done']}"
        )
        for job in deprovision_jobs_open(workspace, limit=limit):
            line = (
                f"{job.status:<8} job {job.pk} {job.workspace.slug} {job.member_label} ({job.cause}) "
                f"attempts {job.attempts} since {job.created_at:%Y-%m-%d %H:%M:%S}Z"
            )
            if job.last_error:
                line += f" last error: {job.last_error.splitlines()[0][:300]}"
            self.stdout.write(line)
