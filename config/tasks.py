"""The one Celery task every beat entry sends (config/periodic.py)."""

from __future__ import annotations

from typing import Any

from celery import current_app, shared_task

from .periodic import periodic_jobs, periodic_run_claim


@shared_task(name="config.tasks.run_periodic", ignore_result=True)
def run_periodic(name: str) -> Any:
    """Run periodic job ``name`` in this worker, unless its slot already ran (two or more schedulers)."""
    job = periodic_jobs()[name]
    if not periodic_run_claim(job.name, job.every):
        return None
    return current_app.tasks[job.task]()
