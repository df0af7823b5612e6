"""/metrics as Prometheus scrapes it: the families an on-call engineer watches, each after the real action; the
token when set; no workspace, person or path in any label; a scrape that answers with Redis down."""

from __future__ import annotations

import pytest
from django.test import Client
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from audit.models import AuditOutbox
from audit.services import audit_sink_create
from tests.saml.conftest import IDP_A, Sso, configure, post_acs, start_login
from tests.saml.idp import make_key
from tests.scim.conftest import ScimClient, make_cred, okta_user
from workspaces.models import DeprovisionJob
from workspaces.services import actor_for_membership


def _scrape(**headers) -> tuple[int, dict[str, list]]:
    response = Client().get("/metrics", HTTP_HOST="10.0.0.7:8000", **headers)
    if response.status_code != 200:
        return response.status_code, {}
    families = {f.name: f.samples for f in text_string_to_metric_families(response.content.decode())}
    return 200, families


def _value(samples, name: str, **labels) -> float:
    return sum(s.value for s in samples if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()))


@pytest.fixture(autouse=True)
def _open(settings):
    settings.METRICS_TOKEN = ""


class TestAccess:
    def test_a_token_is_required_when_set(self, db, settings):
        settings.METRICS_TOKEN = "s3cret-scrape-token"
        assert _scrape()[0] == 401
        assert _scrape(HTTP_AUTHORIZATION="Bearer wrong")[0] == 401
        assert _scrape(HTTP_AUTHORIZATION="Bearer s3cret-scrape-token")[0] == 200

    def test_answered_from_any_host_without_session_or_redirect(self, db, settings):
        settings.SECURE_SSL_REDIRECT = True
        settings.ALLOWED_HOSTS = ["gatehouse.example.com"]
        response = Client().get("/metrics", HTTP_HOST="10.0.0.7:8000")
        assert response.status_code == 200 and response["Content-Type"].startswith("text/plain")
        assert "sessionid" not in response.cookies
        assert Client().post("/metrics").status_code == 405


class TestFamilies:
    def test_requests_scim_saml_and_audit_appends_are_counted(self, world):
        before = _scrape()[1]
        scim = ScimClient(world.a.slug, make_cred(world.owner_a, "bearer"))
        created = scim.post("Users", okta_user("metrics@corp.test"))
        assert created.status_code == 201
        assert scim.get(f"Users/{created.json()['id']}").status_code == 200
        assert scim.get("Users/999999").status_code == 404
        key = make_key("idp-alpha")
        sso = Sso(world.a, configure(world.a, world.owner_a, IDP_A, key, email_domains=["alpha.test"]), IDP_A, key)
        browser = Client()
        rid = start_login(browser, "alpha")
        response = sso.response(name_id="member@alpha.test", in_response_to=rid)
        assert post_acs(browser, "alpha", response).status_code == 302
        post_acs(Client(), "alpha", response)  # the replay is refused
        after = _scrape()[1]

        def delta(family, name, **labels):
            return _value(after.get(family, []), name, **labels) - _value(before.get(family, []), name, **labels)

        assert delta("gatehouse_scim_requests", "gatehouse_scim_requests_total", operation="POST Users", status="201") == 1
        assert delta("gatehouse_scim_requests", "gatehouse_scim_requests_total", operation="GET Users/{id}", status="200") == 1
        assert delta("gatehouse_scim_requests", "gatehouse_scim_requests_total", operation="GET Users/{id}", status="404") == 1
        assert delta("gatehouse_saml_logins", "gatehouse_saml_logins_total", outcome="accepted") == 1
        assert delta("gatehouse_saml_logins", "gatehouse_saml_logins_total", outcome="refused", reason="replay") == 1
        assert delta("gatehouse_http_request_duration_seconds", "gatehouse_http_request_duration_seconds_count",
                     route_group="scim", method="POST", status_class="2xx") == 1
        assert delta("gatehouse_http_request_duration_seconds", "gatehouse_http_request_duration_seconds_count",
                     route_group="saml", method="POST", status_class="3xx") == 1
        assert delta("gatehouse_audit_append_duration_seconds", "gatehouse_audit_append_duration_seconds_count") >= 3

    def test_deprovisioning_backlog_and_siem_lag_are_read_at_scrape(self, world):
        old = timezone.now() - timezone.timedelta(minutes=10)
        DeprovisionJob.objects.create(workspace=world.a, membership=world.member_a, user=world.member_a.user, member_label="m", created_at=old)
        # A failed job is not done either: the oldest, twenty minutes old.
        DeprovisionJob.objects.create(workspace=world.a, membership=world.manager_a, user=world.manager_a.user,
                                      member_label="x", status="failed",
                                      created_at=timezone.now() - timezone.timedelta(minutes=20))
        sink, _ = audit_sink_create(workspace=world.a, name="SIEM", url="https://siem.example.com/in",
                                    actor=actor_for_membership(world.owner_a, "password"))
        AuditOutbox.objects.filter(sink=sink).delete()  # only the two rows below are queued
        AuditOutbox.objects.create(sink=sink, event_id=1, seq=1, created_at=timezone.now() - timezone.timedelta(seconds=90))
        AuditOutbox.objects.create(sink=sink, event_id=2, seq=2, created_at=timezone.now())
        families = _scrape()[1]
        jobs = families["gatehouse_deprovision_jobs"]
        assert _value(jobs, "gatehouse_deprovision_jobs", state="pending") == 1
        assert _value(jobs, "gatehouse_deprovision_jobs", state="failed") == 1
        assert 1190 < _value(families["gatehouse_deprovision_oldest_not_done_age_seconds"],
                             "gatehouse_deprovision_oldest_not_done_age_seconds") < 1500
        assert _value(families["gatehouse_siem_undelivered_events"], "gatehouse_siem_undelivered_events") == 2
        assert 85 < _value(families["gatehouse_siem_oldest_undelivered_age_seconds"],
                           "gatehouse_siem_oldest_undelivered_age_seconds") < 300

    def test_no_workspace_person_or_path_appears_in_any_label(self, world):
        scim = ScimClient(world.a.slug, make_cred(world.owner_a, "bearer"))
        scim.post("Users", okta_user("label.leak@corp.test"))
        scim.get("Users?filter=userName%20eq%20%22label.leak@corp.test%22")
        Client().get("/w/alpha/members/12345/")
        text = Client().get("/metrics").content.decode()
        for leak in ("alpha", "label.leak", "corp.test", "12345", "/w/"):
            assert leak not in text, leak


def test_a_scrape_with_the_broker_down_still_answers(db, settings, caplog):
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:9/0"  # nothing listens on port 9
    status, families = _scrape()
    assert status == 200 and "gatehouse_deprovision_jobs" in families
    assert "gatehouse_celery_queue_depth" not in families
    assert "metrics: celery could not be read" in caplog.text
