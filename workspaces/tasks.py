"""Celery tasks of the workspaces app (the worker's autodiscovery imports this module).

The deprovisioning tasks live in ``workspaces.deprovisioning.tasks`` and keep their registered
names (``workspaces.tasks.run_deprovision_jobs``, ``workspaces.tasks.sweep_deprovision_jobs``).
"""

from __future__ import annotations

from celery import shared_task

from .deprovisioning.tasks import run_deprovision_jobs, sweep_deprovision_jobs
from .services.domains import domain_claims_recheck

__all__ = ["recheck_domain_claims", "run_deprovision_jobs", "sweep_deprovision_jobs"]


@shared_task(name="workspaces.tasks.recheck_domain_claims", ignore_result=True)
def recheck_domain_claims() -> dict[str, int]:
    """Hourly (PERIODIC_JOBS "domain-recheck"): expire pending domain claims, re-check verified ones when due."""
    return domain_claims_recheck()
