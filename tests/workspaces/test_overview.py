"""The workspace overview: an Owner sees SSO, provisioning, members, deprovisioning and the audit chain at
a glance; others see no settings status."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from tests.conftest import login_client
from workspaces.grants import GrantMethod
from workspaces.models import DeprovisionJob


@pytest.fixture
def overview(world):
    def get(who=None, method=GrantMethod.PASSWORD) -> str:
        return login_client(who or world.owner_a, method=method).get("/w/alpha/").content.decode()
    return get


def _card(html: str, card: str) -> str:
    return html.split(f'id="status-{card}"')[1].split("</section>")[0]


def test_a_new_workspace_says_what_is_not_set_up_and_where(world, overview):
    html = overview()
    assert "not configured" in _card(html, "sso") and "/w/alpha/settings/sso/" in _card(html, "sso")
    assert "SCIM off" in _card(html, "scim")
    assert "<strong>5</strong> active, 0 deactivated." in _card(html, "members")
    assert "chain not yet verified" in _card(html, "audit") and "No SIEM sink." in _card(html, "audit")


def test_failed_deprovisioning_jobs_show_on_the_overview(world, overview):
    DeprovisionJob.objects.create(
        workspace=world.a, user=world.member_a.user, membership=world.member_a, member_label="member@alpha.test",
        cause="deactivated", status="failed",
    )
    assert "1 failed" in _card(overview(), "deprovisioning")


def test_sso_tested_and_enforced_and_scims_last_request_show(world, overview, settings):
    from saml.models import SamlSettings
    from scim.models import ScimRequestLog

    SamlSettings.objects.create(
        workspace=world.a, idp_entity_id="http://www.okta.com/exk1", last_test_succeeded_at=timezone.now() - timedelta(hours=2),
    )
    type(world.a).objects.filter(pk=world.a.pk).update(saml_only=True, scim_enabled=True)
    ScimRequestLog.objects.create(workspace=world.a, method="PATCH", path="/Users/1", status=200)
    html = overview(method=GrantMethod.SAML)  # a SAML-only workspace opens to an SSO sign-in
    sso = _card(html, "sso")
    assert "configured" in sso and "tested" in sso and "SAML-only enforced" in sso and "2\xa0hours ago" in sso
    scim = _card(html, "scim")
    assert "SCIM on" in scim and "<code>PATCH</code>" in scim and '<span class="badge ok">200</span>' in scim


@pytest.mark.parametrize("who", ["manager_a", "member_a", "collaborator_a"])
def test_only_owners_see_the_settings_status(world, overview, who):
    assert 'id="overview-status"' not in overview(getattr(world, who))


def test_the_navigation_offers_each_role_its_pages_and_one_two_factor_entry(world, overview):
    owner = overview().split('aria-label="Workspace"')[1].split("</nav>")[0]
    member = overview(world.member_a).split('aria-label="Workspace"')[1].split("</nav>")[0]
    for label in ("Overview", "Members", "SSO and SAML-only", "Provisioning", "Group sync", "Audit log", "SIEM sinks",
                  "Deprovisioning", "API keys"):
        assert f">{label}</a>" in owner
    assert owner.count(">Two-factor</a>") == 1 and member.count(">Two-factor</a>") == 1
    assert ">SSO and SAML-only</a>" not in member and ">Audit log</a>" not in member
    assert 'href="/w/alpha/" aria-current="page">Overview' in owner
    assert "My 2FA" not in overview()


def test_teams_and_repositories_have_pages_of_their_own_scoped_like_the_overview(world):
    from tests.factories import RepositoryFactory, TeamFactory
    from workspaces.models import RepositoryGrant, TeamMembership

    core = TeamFactory(workspace=world.a, name="core")
    TeamFactory(workspace=world.a, name="secret-project")
    TeamFactory(workspace=world.b, name="bravo-team")
    TeamMembership.objects.create(team=core, membership=world.collaborator_a)
    repo = RepositoryFactory(workspace=world.a, name="libs")
    RepositoryFactory(workspace=world.a, name="private-repo")
    RepositoryGrant.objects.create(repository=repo, membership=world.collaborator_a, permission="read")

    owner = login_client(world.owner_a)
    teams = owner.get("/w/alpha/teams/").content.decode()
    assert "core" in teams and "secret-project" in teams and "bravo-team" not in teams and "Create team" in teams
    assert 'href="/w/alpha/teams/" aria-current="page"' in teams
    collaborator = login_client(world.collaborator_a)
    assert [r.name for r in collaborator.get("/w/alpha/repositories/").context["repositories"]] == ["libs"]
    assert "Create team" not in collaborator.get("/w/alpha/teams/").content.decode()
