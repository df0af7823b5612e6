"""The migration that carries each member's last SSO sign-in over to ``Membership.last_sso_at``, so personal API keys
of people who signed in through SSO recently keep working in a SAML-only workspace at the upgrade."""

from __future__ import annotations

import importlib
from datetime import timedelta

import pytest
from django.apps import apps
from django.utils import timezone

from saml.models import SamlMemberState
from tests.factories import MembershipFactory, UserFactory, WorkspaceFactory
from workspaces.models import Membership

migration = importlib.import_module("saml.migrations.0006_last_sso_backfill")


@pytest.mark.django_db
def test_members_with_an_sso_sign_in_get_its_time_and_everyone_else_none():
    ws = WorkspaceFactory(slug="acme")
    signed_in = MembershipFactory(workspace=ws, user=UserFactory(email="ada@acme.test"))
    state_only = MembershipFactory(workspace=ws, user=UserFactory(email="bob@acme.test"))
    portal = MembershipFactory(workspace=ws, user=UserFactory(email="cy@acme.test"))
    already = MembershipFactory(workspace=ws, user=UserFactory(email="di@acme.test"))
    when = timezone.now() - timedelta(days=2)
    newer = timezone.now()
    SamlMemberState.objects.create(membership=signed_in, last_sso_at=when)
    SamlMemberState.objects.create(membership=state_only, groups=["eng"])
    SamlMemberState.objects.create(membership=already, last_sso_at=when)
    Membership.objects.filter(pk=already.pk).update(last_sso_at=newer)
    migration.copy_last_sso(apps, None)
    got = dict(Membership.objects.values_list("pk", "last_sso_at"))
    assert got == {signed_in.pk: when, state_only.pk: None, portal.pk: None, already.pk: newer}
