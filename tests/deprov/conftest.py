"""Fixtures for deprovisioning tests."""

from __future__ import annotations

import pytest

from tests.conftest import login_client
from workspaces.services import actor_for_membership

from .harness import celery_publishing_to, free_port


@pytest.fixture
def dead_broker():
    """Celery in this process publishes to a Redis port where nothing listens (Redis is down)."""
    url = f"redis://127.0.0.1:{free_port()}/0"
    with celery_publishing_to(url):
        yield url


@pytest.fixture
def owner_actor(world):
    return actor_for_membership(world.owner_a, "password")


@pytest.fixture
def owner_client(world):
    return login_client(world.owner_a)
