"""The one table of the project-wide app: which periodic job last started when (config/periodic.py)."""

from __future__ import annotations

from django.db import models


class PeriodicJobRun(models.Model):
    """One row per periodic job: the start of its latest run, claimed atomically by the worker that runs it."""

    name = models.CharField(max_length=100, primary_key=True)
    last_started_at = models.DateTimeField()
    runs = models.PositiveBigIntegerField(default=0)
    skipped = models.PositiveBigIntegerField(default=0)

    class Meta:
        db_table = "gatehouse_periodic_job_run"

    def __str__(self) -> str:
        return f"{self.name} (last started {self.last_started_at:%Y-%m-%d %H:%M:%S})"
