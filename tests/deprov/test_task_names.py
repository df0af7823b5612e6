"""Queued messages and the beat schedule name tasks by string: those names outlive any move of the code."""

from __future__ import annotations

from django.conf import settings

from config.celery import app
from workspaces.deprovisioning.tasks import run_deprovision_jobs, sweep_deprovision_jobs


def test_deprovisioning_tasks_keep_the_names_messages_already_carry():
    assert run_deprovision_jobs.name == "workspaces.tasks.run_deprovision_jobs"
    assert sweep_deprovision_jobs.name == "workspaces.tasks.sweep_deprovision_jobs"


def test_every_task_the_beat_schedule_names_is_registered():
    app.loader.import_default_modules()  # what a worker does at start: autodiscovery
    scheduled = {job["task"] for job in settings.PERIODIC_JOBS.values()}
    assert "workspaces.tasks.sweep_deprovision_jobs" in scheduled
    assert scheduled <= set(app.tasks)
    # What beat sends: the one claiming task, with the job's name.
    sent = {(entry["task"], entry["args"]) for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert sent == {("config.tasks.run_periodic", (name,)) for name in settings.PERIODIC_JOBS}
    assert "config.tasks.run_periodic" in app.tasks
