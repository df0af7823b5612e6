"""The SSO settings page: Owners paste metadata, see what was parsed, test, enforce, and get recovery codes."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import parse_qs, urlparse

from django.test import Client
from django.utils import timezone

from audit.models import AuditEvent
from saml.models import BreakGlassCode, IssuedAuthnRequest, SamlSettings
from saml.sp import acs_url
from tests.conftest import login_client
from workspaces.access import SESSION_KEY
from workspaces.models import Workspace

from .conftest import IDP_A, post_acs
from .idp import idp_metadata, make_key

URL = "/w/alpha/settings/sso/"
# What django.views.decorators.cache.never_cache sends: no shared or browser cache keeps the page.
NEVER_CACHE = "max-age=0, no-cache, no-store, must-revalidate, private"


def _metadata(key=None) -> str:
    return idp_metadata(IDP_A, "https://idp.test/alpha/sso", key or make_key("idp-alpha"))


def _save(client: Client, **extra):
    data = {"action": "save", "metadata_xml": _metadata(), "first_name_attribute": "firstName",
            "last_name_attribute": "lastName", "groups_attribute": "groups", "clock_skew_seconds": 120}
    data.update(extra)
    return client.post(URL, data)


def test_owner_pastes_metadata_and_sees_what_was_parsed(world):
    client = login_client(world.owner_a)
    assert _save(client).status_code == 302
    page = client.get(URL).content.decode()
    assert IDP_A in page
    assert "CN=idp-alpha" in page and "SHA-256" in page
    assert acs_url("alpha") in page and "/saml/alpha/metadata/" in page
    event = AuditEvent.objects.get(workspace=world.a, action="sso.settings_changed")
    assert event.details["created"] is True and event.actor_label == "owner@alpha.test"


def test_bad_xml_is_shown_inline_and_nothing_is_saved(world):
    client = login_client(world.owner_a)
    response = _save(client, metadata_xml="<md:EntityDescriptor")
    assert response.status_code == 200
    assert "not well-formed" in response.content.decode()
    assert not SamlSettings.objects.exists()


def test_metadata_without_a_signing_certificate_is_refused(world):
    client = login_client(world.owner_a)
    xml = _metadata().split("<md:KeyDescriptor")[0] + "<md:SingleSignOnService" + _metadata().split("<md:SingleSignOnService", 1)[1]
    response = _save(client, metadata_xml=xml)
    assert "no signing certificate" in response.content.decode()
    assert not SamlSettings.objects.exists()


def test_metadata_with_a_dtd_is_refused(world):
    client = login_client(world.owner_a)
    response = _save(client, metadata_xml='<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>' + _metadata())
    assert "DTD" in response.content.decode()
    assert not SamlSettings.objects.exists()


def test_several_signing_certificates_are_kept_for_rollover(world):
    client = login_client(world.owner_a)
    _save(client, metadata_xml=idp_metadata(IDP_A, "https://idp.test/sso", make_key("idp-alpha"), make_key("idp-alpha-next")))
    assert len(SamlSettings.objects.get(workspace=world.a).certificates) == 2


def test_managers_cannot_open_the_sso_page(world):
    assert login_client(world.manager_a).get(URL).status_code == 403


def test_owners_of_another_workspace_cannot_open_it(world):
    assert login_client(world.outsider_b).get(URL).status_code == 404


def test_the_page_shows_claimed_domains_as_pending_until_verified_and_links_to_the_domains_page(world, sso_a):
    page = login_client(world.owner_a).get(URL).content.decode()
    assert "alpha.test" in page and "pending: does not route /login/ yet" in page
    assert 'href="/w/alpha/settings/domains/"' in page


def test_sp_metadata_names_the_acs_url(world, sso_a):
    response = Client().get("/saml/alpha/metadata/")
    assert response.status_code == 200
    assert acs_url("alpha").encode() in response.content


def _run_test_sso(world, sso, client: Client, email: str = "owner@alpha.test"):
    response = client.post(URL, {"action": "test"})
    assert response.status_code == 302
    assert "SAMLRequest" in parse_qs(urlparse(response["Location"]).query)
    request = IssuedAuthnRequest.objects.filter(workspace=world.a, purpose="test").latest("created_at")
    return post_acs(client, "alpha", sso.response(name_id=email, in_response_to=request.request_id))


def test_test_sso_checks_the_whole_flow_without_changing_the_session(world, sso_a):
    client = login_client(world.owner_a)
    grants_before = client.session[SESSION_KEY]
    response = _run_test_sso(world, sso_a, client)
    assert response.status_code == 302 and response["Location"].startswith(URL)
    assert client.session[SESSION_KEY] == grants_before
    cfg = SamlSettings.objects.get(workspace=world.a)
    assert cfg.last_test_succeeded_at is not None and cfg.last_test_by == world.owner_a.user
    assert AuditEvent.objects.filter(action="sso.test_succeeded").exists()
    assert not AuditEvent.objects.filter(action="sso.login_succeeded").exists()


def test_test_sso_asserting_someone_else_does_not_count(world, sso_a):
    client = login_client(world.owner_a)
    response = _run_test_sso(world, sso_a, client, email="member@alpha.test")
    assert response.status_code == 302 and response["Location"] == "/w/alpha/settings/sso/test/"  # the admin's page
    assert SamlSettings.objects.get(workspace=world.a).last_test_succeeded_at is None
    assert AuditEvent.objects.filter(action="sso.login_failed", details__reason="test_identity_mismatch").exists()


def test_enforcing_saml_only_is_refused_without_a_successful_test(world, sso_a):
    client = login_client(world.owner_a)
    client.post(URL, {"action": "enforce_on"})
    world.a.refresh_from_db()
    assert world.a.saml_only is False


def test_enforcing_saml_only_is_refused_when_the_test_is_older_than_24_hours(world, sso_a):
    SamlSettings.objects.filter(pk=sso_a.cfg.pk).update(last_test_succeeded_at=timezone.now() - timedelta(hours=25))
    client = login_client(world.owner_a)
    client.post(URL, {"action": "enforce_on"})
    world.a.refresh_from_db()
    assert world.a.saml_only is False


def _codes_step(client):
    """Press "Enforce SAML-only": the step that shows the recovery codes; returns the page, codes and token."""
    response = client.post(URL, {"action": "enforce_on"})
    page = response.content.decode()
    codes = page.split('id="recovery-codes-text">')[1].split("</pre>")[0].split()
    prepared = page.split('name="prepared" value="')[1].split('"')[0]
    return response, codes, prepared


def _enforce(client):
    response, codes, prepared = _codes_step(client)
    assert client.post(URL, {"action": "enforce_on", "prepared": prepared, "stored": "on"}).status_code == 302
    return codes


def test_enforcing_shows_the_recovery_codes_first_and_changes_nothing_until_confirmed(world, sso_a):
    client = login_client(world.owner_a, method="saml")
    _run_test_sso(world, sso_a, client)
    response, codes, prepared = _codes_step(client)
    page = response.content.decode()
    assert response.status_code == 200 and response["Cache-Control"] == NEVER_CACHE and len(codes) == 8
    assert 'data-download="recovery-codes-text"' in page and 'data-copy="recovery-codes-text"' in page
    assert "You signed in through SSO: your session continues." in page
    world.a.refresh_from_db()
    assert world.a.saml_only is False and not BreakGlassCode.objects.filter(workspace=world.a).exists()

    unticked = client.post(URL, {"action": "enforce_on", "prepared": prepared})
    assert unticked.status_code == 400 and "Tick the box" in unticked.content.decode()
    assert codes == unticked.content.decode().split('id="recovery-codes-text">')[1].split("</pre>")[0].split()
    world.a.refresh_from_db()
    assert world.a.saml_only is False

    assert client.post(URL, {"action": "enforce_on", "prepared": prepared, "stored": "on"}).status_code == 302
    world.a.refresh_from_db()
    assert world.a.saml_only is True
    assert BreakGlassCode.objects.filter(workspace=world.a, used_at__isnull=True).count() == 8
    assert AuditEvent.objects.filter(action="sso.enforcement_changed", details__after__saml_only=True).exists()
    # The codes the Owner stored are the ones that work.
    from saml.services import break_glass_use

    assert break_glass_use(workspace=world.a, user=world.owner_a.user, code=codes[3]) == world.owner_a


def test_the_enforce_step_names_members_who_never_signed_in_through_sso(world, sso_a):
    from django.utils import timezone as tz

    from workspaces.models import Membership

    Membership.objects.filter(pk=world.manager_a.pk).update(last_sso_at=tz.now())
    client = login_client(world.owner_a)
    _run_test_sso(world, sso_a, client)
    page = _codes_step(client)[0].content.decode()
    names = page.split('id="enforce-without-sso"')[1].split("</section>")[0]
    assert "member@alpha.test" in names and "manager@alpha.test" not in names
    assert "your session ends at your next click" in page and "/saml/alpha/login/" in page


def test_recovery_codes_not_issued_here_cannot_enforce(world, sso_a):
    from django.core import signing

    client = login_client(world.owner_a, method="saml")
    _run_test_sso(world, sso_a, client)
    mine = ["aaaaa-bbbbb-ccccc-ddddd"] * 8
    forged = signing.TimestampSigner(salt="another-salt").sign_object(mine)
    response = client.post(URL, {"action": "enforce_on", "prepared": forged, "stored": "on"}, follow=True)
    assert "were not issued here" in response.content.decode()
    world.a.refresh_from_db()
    assert world.a.saml_only is False and not BreakGlassCode.objects.filter(workspace=world.a).exists()


def test_stopping_enforcement_asks_first(world, sso_a):
    client = login_client(world.owner_a, method="saml")
    _run_test_sso(world, sso_a, client)
    _enforce(client)
    page = client.post(URL, {"action": "enforce_off"}).content.decode()
    assert "Stop enforcing SAML-only in" in page
    world.a.refresh_from_db()
    assert world.a.saml_only is True
    client.post(URL, {"action": "enforce_off", "confirmed": "yes"})
    world.a.refresh_from_db()
    assert world.a.saml_only is False


def test_enforcement_ends_existing_password_sessions_and_refuses_password_login(world, sso_a, password):
    member_client = login_client(world.member_a)
    assert member_client.get("/w/alpha/").status_code == 200
    owner = login_client(world.owner_a)
    _run_test_sso(world, sso_a, owner)
    _enforce(owner)
    assert member_client.get("/w/alpha/").status_code == 403
    response = Client().post("/login/", {"email": "member@alpha.test", "password": password})
    assert "requires single sign-on" in response.content.decode()


def test_the_owner_who_enforces_from_a_password_session_must_come_back_through_sso(world, sso_a):
    client = login_client(world.owner_a)
    _run_test_sso(world, sso_a, client)
    _enforce(client)
    response = client.get("/w/alpha/")
    assert response.status_code == 403 and "/saml/alpha/login/" in response.content.decode()


def test_a_certificate_close_to_expiry_is_flagged(world):
    client = login_client(world.owner_a)
    _save(client, metadata_xml=idp_metadata(IDP_A, "https://idp.test/sso", make_key("idp-short", days=10)))
    assert "expires within 30 days" in client.get(URL).content.decode()


def test_changing_the_attribute_mapping_keeps_the_current_metadata(world, sso_a):
    client = login_client(world.owner_a)
    assert _save(client, metadata_xml="", groups_attribute="memberOf").status_code == 302
    cfg = SamlSettings.objects.get(workspace=world.a)
    assert cfg.groups_attribute == "memberOf" and cfg.idp_entity_id == IDP_A
    assert cfg.certificates == sso_a.cfg.certificates
    changes = AuditEvent.objects.filter(action="sso.settings_changed").latest("seq").details["changes"]
    assert changes["groups_attribute"] == {"before": "groups", "after": "memberOf"}


def test_test_sso_asks_the_idp_to_authenticate_again(world, sso_a):
    import base64
    import zlib

    response = login_client(world.owner_a).post(URL, {"action": "test"})
    saml_request = parse_qs(urlparse(response["Location"]).query)["SAMLRequest"][0]
    assert b'ForceAuthn="true"' in zlib.decompress(base64.b64decode(saml_request), -15)


# ----------------------------------------------------------------------------- guided set-up


def test_preview_shows_the_parsed_idp_and_saves_nothing(world):
    client = login_client(world.owner_a)
    response = _save(client, action="preview")
    page = response.content.decode()
    assert response.status_code == 200 and 'id="metadata-preview"' in page
    assert f'<code id="preview-entity-id">{IDP_A}</code>' in page
    assert page.count('class="preview-cert"') == 1 and "SHA-256" in page and "expires" in page
    assert "Nothing is saved yet" in page
    assert not SamlSettings.objects.filter(workspace=world.a).exists()
    assert not AuditEvent.objects.filter(action="sso.settings_changed").exists()


def test_preview_says_when_saving_would_stage_or_void_the_test(world, sso_a):
    other = idp_metadata("http://www.okta.com/exkOTHER", "https://idp.other/sso", make_key("idp-other"))
    client = login_client(world.owner_a, method="saml")
    assert 'id="preview-voids-test"' in _save(client, action="preview", metadata_xml=other).content.decode()
    Workspace.objects.filter(pk=world.a.pk).update(saml_only=True)
    assert 'id="preview-staged"' in _save(client, action="preview", metadata_xml=other).content.decode()
    assert SamlSettings.objects.get(workspace=world.a).idp_entity_id == IDP_A


def test_preview_of_bad_metadata_names_the_field_and_keeps_what_was_typed(world):
    client = login_client(world.owner_a)
    page = _save(client, action="preview", metadata_xml="<not-metadata/>").content.decode()
    assert 'id="metadata-preview"' not in page and "has-error" in page and "&lt;not-metadata/&gt;" in page


def test_the_values_for_the_idp_each_have_a_copy_button(world):
    page = login_client(world.owner_a).get(URL).content.decode()
    for target in ("acs-url", "sp-entity-id", "name-id-format", "login-url"):
        assert f'data-copy="{target}"' in page
