"""manage.py sso_enforce: SAML-only on and off, new recovery codes and discarding a staged IdP, with the page's
rules and audit."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from audit.models import AuditEvent
from saml.models import BreakGlassCode, SamlSettings


def run(*args) -> str:
    out = io.StringIO()
    call_command("sso_enforce", *args, stdout=out)
    return out.getvalue()


def test_on_needs_a_fresh_test_then_prints_the_codes_once_and_off_revokes_them(world, sso_a):
    with pytest.raises(CommandError, match="Run Test SSO successfully first"):
        run("alpha", "on")
    SamlSettings.objects.filter(pk=sso_a.cfg.pk).update(last_test_succeeded_at=timezone.now() - timedelta(hours=1))
    text = run("alpha", "on")
    codes = [line.strip() for line in text.splitlines() if line.startswith("  ")]
    assert len(codes) == 8 and "alpha: SAML-only enforced; 8 unused recovery codes" in text
    assert BreakGlassCode.objects.filter(workspace=world.a, used_at__isnull=True).count() == 8
    event = AuditEvent.objects.filter(action="sso.enforcement_changed").latest("seq")
    assert event.details["after"] == {"saml_only": True} and event.actor_label.startswith("manage.py sso_enforce")
    new = run("alpha", "new-codes")
    assert len([line for line in new.splitlines() if line.startswith("  ")]) == 8
    assert "SAML-only off; 0 unused recovery codes" in run("alpha", "off")


def test_status_and_an_unknown_workspace(world, sso_a):
    assert "alpha: SAML-only off; 0 unused recovery codes; no successful Test SSO yet" in run("alpha", "status")
    with pytest.raises(CommandError, match="No workspace"):
        run("nope", "status")
