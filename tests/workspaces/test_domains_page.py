"""The email domains page (/w/<slug>/settings/domains/) and ``manage.py workspace_domain``, against a DNS server
on loopback."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from audit.models import AuditEvent
from tests.conftest import login_client
from tests.dns_server import publish
from workspaces.models import DomainClaim

URL = "/w/alpha/settings/domains/"


def _add(client, domain: str = "bigcorp.test"):
    return client.post(URL, {"action": "add", "domain": domain})


def _claim(world) -> DomainClaim:
    return DomainClaim.objects.get(workspace=world.a)


def test_an_owner_claims_a_domain_and_sees_the_exact_record_to_publish(world):
    client = login_client(world.owner_a)
    assert _add(client, "BigCorp.test").status_code == 302
    claim = _claim(world)
    page = client.get(URL).content.decode()
    assert f'<code id="record-name-{claim.pk}">_gatehouse-challenge.bigcorp.test</code>' in page
    assert f'<code id="record-value-{claim.pk}">gatehouse-verification={claim.token}</code>' in page
    assert f'data-copy="record-value-{claim.pk}"' in page and "/static/js/copy.js" in page
    assert "pending" in page and "Expires" in page
    assert "<script>" not in page  # the copy button's script is a file: the CSP allows no inline script


def test_verify_now_with_the_record_verifies(world, dns):
    client = login_client(world.owner_a)
    _add(client)
    publish(dns, _claim(world))
    response = client.post(URL, {"action": "verify", "claim": _claim(world).pk}, follow=True)
    assert response.status_code == 200
    page = response.content.decode()
    assert "bigcorp.test is verified" in page and "last checked" in page
    assert _claim(world).verified_at is not None


def test_verify_now_without_the_record_says_what_to_add(world, dns):
    client = login_client(world.owner_a)
    _add(client)
    page = client.post(URL, {"action": "verify", "claim": _claim(world).pk}, follow=True).content.decode()
    assert "No TXT record found at _gatehouse-challenge.bigcorp.test: add a TXT record" in page
    assert "DNS changes can take minutes" in page


def test_verify_now_with_the_dns_server_down_is_a_clear_error_not_a_500(world, dns):
    client = login_client(world.owner_a)
    _add(client)
    dns.stop()
    response = client.post(URL, {"action": "verify", "claim": _claim(world).pk}, follow=True)
    assert response.status_code == 200
    assert "The DNS servers did not answer for _gatehouse-challenge.bigcorp.test" in response.content.decode()


def test_an_invalid_domain_is_refused_on_the_form(world):
    response = _add(login_client(world.owner_a), "localhost")
    assert response.status_code == 200
    assert "is not a valid domain name" in response.content.decode()
    assert not DomainClaim.objects.exists()


def test_an_owner_removes_a_claim(world):
    client = login_client(world.owner_a)
    _add(client)
    assert client.post(URL, {"action": "remove", "claim": _claim(world).pk}).status_code == 302
    assert not DomainClaim.objects.exists()
    assert AuditEvent.objects.filter(workspace=world.a, action="domain.removed").count() == 1


def test_managers_and_members_cannot_open_the_page(world):
    assert login_client(world.manager_a).get(URL).status_code == 403
    assert login_client(world.member_a).get(URL).status_code == 403


def test_owners_of_another_workspace_cannot_open_it(world):
    assert login_client(world.outsider_b).get(URL).status_code == 404


def test_a_claim_of_b_cannot_be_verified_or_removed_from_a(world, dns):
    call_command("workspace_domain", "bravo", "add", "bravo.test", stdout=StringIO())
    theirs = DomainClaim.objects.get(workspace=world.b)
    client = login_client(world.owner_a)
    for action in ("verify", "remove"):
        page = client.post(URL, {"action": action, "claim": theirs.pk}, follow=True).content.decode()
        assert "That domain claim no longer exists" in page
    assert DomainClaim.objects.filter(pk=theirs.pk, verified_at__isnull=True).exists()
    assert dns.zone.queries == []


def test_the_workspace_home_links_to_the_page_for_owners(world):
    assert URL in login_client(world.owner_a).get("/w/alpha/").content.decode()


# ----------------------------------------------------------------------------- manage.py workspace_domain


def _command(*args: str) -> str:
    out = StringIO()
    call_command("workspace_domain", *args, stdout=out)
    return out.getvalue()


def test_the_command_adds_verifies_lists_and_removes(world, dns):
    text = _command("alpha", "add", "bigcorp.test")
    claim = _claim(world)
    assert f'Publish: _gatehouse-challenge.bigcorp.test  TXT  "gatehouse-verification={claim.token}"' in text
    with pytest.raises(CommandError, match="No TXT record found"):
        _command("alpha", "verify", "bigcorp.test")
    publish(dns, claim)
    assert "bigcorp.test is verified." in _command("alpha", "verify", "BIGCORP.test")
    assert "bigcorp.test: verified" in _command("alpha", "list")
    assert "Removed the claim to bigcorp.test." in _command("alpha", "remove", "bigcorp.test")
    assert "alpha claims no email domain." in _command("alpha", "list")
    actions = list(AuditEvent.objects.filter(action__startswith="domain.").order_by("seq")
                   .values_list("action", "actor_kind"))
    assert actions == [("domain.claimed", "system"), ("domain.verification_failed", "system"),
                       ("domain.verified", "system"), ("domain.removed", "system")]


def test_the_command_refuses_a_domain_the_workspace_does_not_claim(world):
    with pytest.raises(CommandError, match="alpha does not claim bigcorp.test"):
        _command("alpha", "verify", "bigcorp.test")


def test_the_recheck_shows_progress(world, dns):
    _command("alpha", "add", "bigcorp.test")
    publish(dns, _claim(world))
    _command("alpha", "verify", "bigcorp.test")
    DomainClaim.objects.update(last_checked_at=None)
    text = _command("--recheck")
    assert "[1/1] bigcorp.test (alpha)" in text and "verified: 1" in text


def test_support_sees_who_claims_a_domain_in_the_django_admin_but_cannot_change_it(world, admin_client):
    _command("alpha", "add", "bigcorp.test")
    page = admin_client.get("/admin/workspaces/domainclaim/?q=bigcorp").content.decode()
    assert "bigcorp.test" in page
    assert admin_client.get("/admin/workspaces/domainclaim/add/").status_code == 403
    claim = _claim(world)
    assert admin_client.get(f"/admin/workspaces/domainclaim/{claim.pk}/delete/").status_code == 403
