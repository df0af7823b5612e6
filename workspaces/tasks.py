"""Celery tasks of the workspaces app (the worker's autodiscovery imports this module).

The deprovisioning tasks live in ``workspaces.deprovisioning.tasks`` and keep their registered
names (``workspaces.tasks.run_deprovision_jobs``, ``workspaces.tasks.sweep_deprovision_jobs``).
"""

from __future__ import annotations

from .deprovisioning.tasks import run_deprovision_jobs, sweep_deprovision_jobs

__all__ = ["run_deprovision_jobs", "sweep_deprovision_jobs"]
