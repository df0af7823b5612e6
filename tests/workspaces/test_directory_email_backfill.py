"""The migration that gives members the directory already manages their directory email, from what SCIM sent."""

from __future__ import annotations

import importlib

import pytest
from django.apps import apps

from tests.factories import MembershipFactory, UserFactory, WorkspaceFactory
from workspaces.models import Membership

migration = importlib.import_module("workspaces.migrations.0005_directory_link")


@pytest.mark.django_db
def test_directory_managed_members_get_the_email_scim_sent_and_portal_members_none():
    ws = WorkspaceFactory(slug="acme")
    primary = MembershipFactory(workspace=ws, user=UserFactory(email="ada@acme.test"), scim_username="00u1",
                                profile={"emails": [{"value": "home@ada.test", "type": "home"},
                                                    {"value": "Ada.L@acme.test", "primary": True}]})
    work = MembershipFactory(workspace=ws, user=UserFactory(email="bob@acme.test"), scim_username="00u2",
                             profile={"emails": [{"value": "other@bob.test"}, {"value": "bob.w@acme.test", "type": "Work"}]})
    by_name = MembershipFactory(workspace=ws, user=UserFactory(email="cy@acme.test"), scim_username="cy.n@acme.test")
    by_account = MembershipFactory(workspace=ws, user=UserFactory(email="di@acme.test"), scim_username="00u4")
    portal = MembershipFactory(workspace=ws, user=UserFactory(email="ed@acme.test"))
    migration.link_directory_members(apps, None)
    got = dict(Membership.objects.values_list("pk", "directory_email"))
    assert got == {primary.pk: "Ada.L@acme.test", work.pk: "bob.w@acme.test", by_name.pk: "cy.n@acme.test",
                   by_account.pk: "di@acme.test", portal.pk: ""}
