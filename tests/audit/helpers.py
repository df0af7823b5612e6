"""Small helpers for the audit tests."""

from __future__ import annotations

from contextlib import contextmanager
from datetime import datetime
from unittest import mock

from django.db import transaction

from audit.record import Actor, record_event
from workspaces.services import actor_for_membership


def as_actor(membership, method: str = "password") -> Actor:
    return actor_for_membership(membership, method)


@contextmanager
def frozen_now(when: datetime):
    """Make record_event (and everything else) believe it is ``when``."""
    with mock.patch("django.utils.timezone.now", return_value=when):
        yield


def record(workspace, action: str = "test.happened", *, actor: Actor | None = None, **kwargs):
    with transaction.atomic():
        return record_event(actor=actor or Actor.system("test"), action=action, workspace=workspace, **kwargs)
