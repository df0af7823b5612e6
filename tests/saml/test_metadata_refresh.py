"""The daily metadata refresh: changes are audited, a failure keeps the last good metadata and warns."""

from __future__ import annotations

import logging

import pytest

from audit.models import AuditEvent
from saml import services, tasks
from saml.models import SamlSettings
from workspaces.services import actor_for_membership

from .conftest import IDP_A
from .idp import idp_metadata, make_key


@pytest.fixture
def idp(loopback_server, outbound_to_loopback):
    """The IdP's metadata URL: a real HTTP server on loopback (reachable because the test allows 127.0.0.0/8)."""
    return loopback_server


def _configure_by_url(world, idp, key):
    idp.body = idp_metadata(IDP_A, "https://idp.test/sso", key).encode()
    return services.saml_settings_save(workspace=world.a, actor=actor_for_membership(world.owner_a, "password"),
                                       metadata_url=idp.url("/alpha/metadata"))


def test_a_rotated_certificate_is_picked_up_and_audited(world, idp):
    cfg = _configure_by_url(world, idp, make_key("idp-alpha"))
    idp.body = idp_metadata(IDP_A, "https://idp.test/sso", make_key("idp-alpha"), make_key("idp-alpha-next")).encode()
    tasks.refresh_metadata.apply(args=[cfg.pk])
    cfg.refresh_from_db()
    assert len(cfg.certificates) == 2
    event = AuditEvent.objects.get(action="sso.metadata_refreshed")
    assert "certificates" in event.details["changes"]


def test_a_failing_refresh_keeps_the_last_good_metadata_and_warns(world, idp, caplog):
    cfg = _configure_by_url(world, idp, make_key("idp-alpha"))
    before = list(cfg.certificates)
    idp.close()  # the IdP is down: connection refused
    with caplog.at_level(logging.WARNING, logger="saml.services"):
        tasks.refresh_metadata.apply(args=[cfg.pk])
    cfg = SamlSettings.objects.get(pk=cfg.pk)
    assert cfg.certificates == before and "could not be fetched" in cfg.metadata_refresh_error
    assert AuditEvent.objects.filter(action="sso.metadata_refresh_failed").exists()
    assert "keeping the last good metadata" in caplog.text


def test_refresh_with_invalid_metadata_keeps_the_last_good_one(world, idp):
    cfg = _configure_by_url(world, idp, make_key("idp-alpha"))
    idp.body = b"<not-metadata/>"
    tasks.refresh_metadata.apply(args=[cfg.pk])
    cfg.refresh_from_db()
    assert cfg.idp_entity_id == IDP_A and cfg.metadata_refresh_error


def test_an_unchanged_document_writes_no_event(world, idp):
    cfg = _configure_by_url(world, idp, make_key("idp-alpha"))
    assert tasks.refresh_metadata.apply(args=[cfg.pk]).get() == "unchanged"
    assert not AuditEvent.objects.filter(action__startswith="sso.metadata_refresh").exists()


def test_the_beat_schedule_refreshes_daily():
    from django.conf import settings

    job = settings.PERIODIC_JOBS["saml-refresh-metadata"]
    assert job["task"] == "saml.tasks.refresh_all_metadata" and job["every"] == 24 * 3600
    assert settings.CELERY_BEAT_SCHEDULE["saml-refresh-metadata"]["schedule"] == 24 * 3600


def test_the_daily_task_queues_one_refresh_per_workspace_with_a_metadata_url(world, sso_b, idp, monkeypatch):
    cfg = _configure_by_url(world, idp, make_key("idp-alpha"))
    queued = []
    monkeypatch.setattr(tasks.refresh_metadata, "delay", queued.append)
    assert tasks.refresh_all_metadata.apply().get() == 1
    assert queued == [cfg.pk]


def test_housekeeping_drops_expired_authn_requests_and_replay_rows_only(world):
    from datetime import timedelta

    from django.utils import timezone

    from saml.models import IssuedAuthnRequest, UsedAssertion

    now = timezone.now()
    IssuedAuthnRequest.objects.create(workspace=world.a, request_id="old", expires_at=now - timedelta(days=2))
    IssuedAuthnRequest.objects.create(workspace=world.a, request_id="live", expires_at=now + timedelta(minutes=5))
    UsedAssertion.objects.create(workspace=world.a, assertion_id="gone", expires_at=now - timedelta(minutes=1))
    UsedAssertion.objects.create(workspace=world.a, assertion_id="kept", expires_at=now + timedelta(minutes=5))
    assert tasks.purge_expired_saml_state.apply().get() == {"authn_requests": 1, "used_assertions": 1}
    assert set(IssuedAuthnRequest.objects.values_list("request_id", flat=True)) == {"live"}
    assert set(UsedAssertion.objects.values_list("assertion_id", flat=True)) == {"kept"}
