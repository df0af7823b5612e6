"""SP key rollover: prepare, activate, retire, with the IdP encrypting to the old or the new certificate, and no failed
login at any step until the old key is retired."""

from __future__ import annotations

import pytest
from django.test import Client
from lxml import etree

from audit.models import AuditEvent
from saml import services
from saml.models import SamlSettings, SpKey, SpKeyState
from workspaces.exceptions import NotAllowed, ServiceError
from workspaces.services import actor_for_membership

from .conftest import failures, post_acs
from .idp import IdpRefused, sp_certificates, verify_authn_request

MD = "{urn:oasis:names:tc:SAML:2.0:metadata}"


def owner(world):
    return actor_for_membership(world.owner_a, "password")


def published(slug: str = "alpha") -> str:
    return Client().get(f"/saml/{slug}/metadata/").content.decode()


def login(world, sso, *, encrypt_to: str, signing_certs: list[str]) -> int:
    """One SP-initiated login: the IdP checks the request's signature, answers encrypted to ``encrypt_to``."""
    client = Client()
    location = client.get("/saml/alpha/login/")["Location"]
    request_id = verify_authn_request(location, signing_certs).get("ID")
    return post_acs(client, "alpha", sso.response(
        name_id="member@alpha.test", in_response_to=request_id, encrypt_to=encrypt_to)).status_code


@pytest.fixture
def signing_a(world, sso_a):
    services.sp_key_prepare(workspace=world.a, actor=owner(world))
    services.sp_options_set(workspace=world.a, actor=owner(world), sign_authn_requests=True,
                            require_encrypted_assertions=True)
    return sso_a


def test_rollover_never_fails_a_login_until_the_old_key_is_retired(world, signing_a):
    [old_cert] = sp_certificates(published(), "encryption")
    assert login(world, signing_a, encrypt_to=old_cert, signing_certs=[old_cert]) == 302

    services.sp_key_prepare(workspace=world.a, actor=owner(world))
    certs = sp_certificates(published(), "encryption")
    assert certs[0] == old_cert and len(certs) == 2  # the next key is published beside the active one
    new_cert = certs[1]
    # Still signed with the old key; the IdP may encrypt to either certificate.
    assert login(world, signing_a, encrypt_to=old_cert, signing_certs=[old_cert]) == 302
    assert login(world, signing_a, encrypt_to=new_cert, signing_certs=[old_cert]) == 302
    with pytest.raises(IdpRefused):
        login(world, signing_a, encrypt_to=new_cert, signing_certs=[new_cert])

    services.sp_key_activate(workspace=world.a, actor=owner(world))
    assert sp_certificates(published(), "encryption") == [new_cert]
    assert sp_certificates(published(), "signing") == [new_cert]
    # The new key signs; an IdP still encrypting to the old certificate keeps working during the grace period.
    assert login(world, signing_a, encrypt_to=old_cert, signing_certs=[new_cert]) == 302
    assert login(world, signing_a, encrypt_to=new_cert, signing_certs=[new_cert]) == 302
    with pytest.raises(IdpRefused):
        login(world, signing_a, encrypt_to=new_cert, signing_certs=[old_cert])
    assert failures(world.a) == []

    services.sp_key_retire(workspace=world.a, actor=owner(world))
    assert login(world, signing_a, encrypt_to=new_cert, signing_certs=[new_cert]) == 302
    assert login(world, signing_a, encrypt_to=old_cert, signing_certs=[new_cert]) == 403
    assert failures(world.a) == ["decryption_failed"]


def test_each_step_is_audited_without_key_material(world, signing_a):
    services.sp_key_prepare(workspace=world.a, actor=owner(world))
    services.sp_key_activate(workspace=world.a, actor=owner(world))
    services.sp_key_retire(workspace=world.a, actor=owner(world))
    events = list(AuditEvent.objects.filter(workspace=world.a, action__startswith="sso.sp_key_").order_by("seq"))
    assert [e.action for e in events] == ["sso.sp_key_prepared", "sso.sp_key_prepared", "sso.sp_key_activated",
                                         "sso.sp_key_retired"]
    assert [e.details.get("state") for e in events[:2]] == ["active", "next"]
    assert events[2].details["previous"] == events[3].details["fingerprint_sha256"]
    assert not any("PRIVATE" in str(e.details) or "gAAAA" in str(e.details) for e in events)


def test_a_retired_key_loses_its_private_key(world, signing_a):
    services.sp_key_prepare(workspace=world.a, actor=owner(world))
    services.sp_key_activate(workspace=world.a, actor=owner(world))
    old = services.sp_key_retire(workspace=world.a, actor=owner(world))
    old.refresh_from_db()
    assert old.state == SpKeyState.RETIRED and old.key_encrypted == "" and old.retired_at is not None


def test_activating_again_retires_the_key_still_in_its_grace_period(world, signing_a):
    first = SpKey.objects.get(saml_settings__workspace=world.a)
    for _ in range(2):
        services.sp_key_prepare(workspace=world.a, actor=owner(world))
        services.sp_key_activate(workspace=world.a, actor=owner(world))
    first.refresh_from_db()
    states = sorted(SpKey.objects.filter(saml_settings__workspace=world.a).values_list("state", flat=True))
    assert first.state == SpKeyState.RETIRED and states == ["active", "previous", "retired"]


def test_steps_out_of_order_are_refused(world, signing_a):
    with pytest.raises(ServiceError, match="no next SP key"):
        services.sp_key_activate(workspace=world.a, actor=owner(world))
    with pytest.raises(ServiceError, match="no previous SP key"):
        services.sp_key_retire(workspace=world.a, actor=owner(world))
    services.sp_key_prepare(workspace=world.a, actor=owner(world))
    with pytest.raises(ServiceError, match="already prepared"):
        services.sp_key_prepare(workspace=world.a, actor=owner(world))


def test_only_owners_manage_sp_keys(world, sso_a):
    with pytest.raises(NotAllowed):
        services.sp_key_prepare(workspace=world.a, actor=actor_for_membership(world.manager_a, "password"))
    assert not SpKey.objects.exists()


def test_another_workspaces_owner_cannot_touch_these_keys(world, signing_a):
    with pytest.raises(NotAllowed):
        services.sp_key_prepare(workspace=world.a, actor=actor_for_membership(world.outsider_b, "password"))
    assert SpKey.objects.filter(saml_settings__workspace=world.a).count() == 1


def test_requiring_encryption_under_saml_only_needs_an_encrypted_test(world, sso_a):
    from django.utils import timezone

    services.sp_key_prepare(workspace=world.a, actor=owner(world))
    world.a.saml_only = True
    world.a.save(update_fields=["saml_only"])
    SamlSettings.objects.filter(workspace=world.a).update(
        last_test_succeeded_at=timezone.now(), last_test_result={"encrypted": False})
    with pytest.raises(ServiceError, match="Test SSO"):
        services.sp_options_set(workspace=world.a, actor=owner(world), require_encrypted_assertions=True)
    SamlSettings.objects.filter(workspace=world.a).update(last_test_result={"encrypted": True})
    cfg = services.sp_options_set(workspace=world.a, actor=owner(world), require_encrypted_assertions=True)
    assert cfg.require_encrypted_assertions is True


def test_metadata_publishes_what_each_key_is_for(world, signing_a):
    root = etree.fromstring(published().encode())
    sp = root.find(f"{MD}SPSSODescriptor")
    assert (sp.get("AuthnRequestsSigned"), sp.get("WantAssertionsSigned")) == ("true", "true")
    assert [kd.get("use") for kd in sp.findall(f"{MD}KeyDescriptor")] == ["signing", "encryption"]
    algorithms = [m.get("Algorithm") for m in sp.iter(f"{MD}EncryptionMethod")]
    assert "http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p" in algorithms
    assert not any("rsa-1_5" in a for a in algorithms)
    services.sp_key_prepare(workspace=world.a, actor=owner(world))
    sp = etree.fromstring(published().encode()).find(f"{MD}SPSSODescriptor")
    assert [kd.get("use") for kd in sp.findall(f"{MD}KeyDescriptor")] == ["signing", "encryption"] * 2


def test_metadata_without_keys_or_signing_says_so(world, sso_a):
    sp = etree.fromstring(published().encode()).find(f"{MD}SPSSODescriptor")
    assert sp.get("AuthnRequestsSigned") == "false" and sp.findall(f"{MD}KeyDescriptor") == []
    services.sp_key_prepare(workspace=world.a, actor=owner(world))
    sp = etree.fromstring(published().encode()).find(f"{MD}SPSSODescriptor")
    assert sp.get("AuthnRequestsSigned") == "false" and len(sp.findall(f"{MD}KeyDescriptor")) == 2


def test_metadata_of_b_never_shows_the_keys_of_a(world, signing_a, sso_b):
    [cert_a] = sp_certificates(published("alpha"), "signing")
    assert sp_certificates(published("bravo"), "signing") == []
    services.sp_key_prepare(workspace=world.b, actor=actor_for_membership(world.outsider_b, "password"))
    [cert_b] = sp_certificates(published("bravo"), "signing")
    assert cert_b != cert_a


def _enforce(world, **last_test) -> None:
    from django.utils import timezone

    world.a.saml_only = True
    world.a.save(update_fields=["saml_only"])
    SamlSettings.objects.filter(workspace=world.a).update(last_test_succeeded_at=timezone.now(),
                                                          last_test_result=last_test)


def test_under_saml_only_retiring_needs_a_test_since_the_activation(world, signing_a):
    from django.utils import timezone

    services.sp_key_prepare(workspace=world.a, actor=owner(world))
    _enforce(world, encrypted=True, decrypted_with="")  # a test before the activation proves nothing about it
    services.sp_key_activate(workspace=world.a, actor=owner(world))
    with pytest.raises(ServiceError, match="run Test SSO first"):
        services.sp_key_retire(workspace=world.a, actor=owner(world))
    SamlSettings.objects.filter(workspace=world.a).update(last_test_succeeded_at=timezone.now())
    old = SpKey.objects.get(saml_settings__workspace=world.a, state=SpKeyState.PREVIOUS)
    assert services.sp_key_retire(workspace=world.a, actor=owner(world)).pk == old.pk


def test_under_saml_only_a_key_the_idp_still_encrypts_to_is_not_retired(world, signing_a):
    services.sp_key_prepare(workspace=world.a, actor=owner(world))
    services.sp_key_activate(workspace=world.a, actor=owner(world))
    old = SpKey.objects.get(saml_settings__workspace=world.a, state=SpKeyState.PREVIOUS)
    _enforce(world, encrypted=True, decrypted_with=old.fingerprint_sha256)
    with pytest.raises(ServiceError, match="no longer encrypts to the previous"):
        services.sp_key_retire(workspace=world.a, actor=owner(world))
    new = SpKey.objects.get(saml_settings__workspace=world.a, state=SpKeyState.ACTIVE)
    SamlSettings.objects.filter(workspace=world.a).update(
        last_test_result={"encrypted": True, "decrypted_with": new.fingerprint_sha256})
    services.sp_key_retire(workspace=world.a, actor=owner(world))


def test_test_sso_records_which_key_decrypted_it(world, signing_a):
    """Through the real flow: the settings page's Test SSO, answered encrypted to the active certificate."""
    from saml.models import IssuedAuthnRequest
    from tests.conftest import login_client

    client = login_client(world.owner_a)
    client.post("/w/alpha/settings/sso/", {"action": "test"})
    request_id = IssuedAuthnRequest.objects.filter(workspace=world.a, purpose="test").latest("created_at").request_id
    [cert] = sp_certificates(published(), "encryption")
    post_acs(client, "alpha", signing_a.response(name_id="owner@alpha.test", in_response_to=request_id,
                                                 encrypt_to=cert))
    active = SpKey.objects.get(saml_settings__workspace=world.a, state=SpKeyState.ACTIVE)
    result = SamlSettings.objects.get(workspace=world.a).last_test_result
    assert result["encrypted"] is True and result["decrypted_with"] == active.fingerprint_sha256


def test_the_key_selectors_read_this_workspace_only(world, signing_a, sso_b):
    from saml import selectors

    services.sp_key_prepare(workspace=world.b, actor=actor_for_membership(world.outsider_b, "password"))
    key_a = SpKey.objects.get(saml_settings__workspace=world.a)
    key_b = SpKey.objects.get(saml_settings__workspace=world.b)
    assert [k.pk for k in selectors.sp_keys_for(signing_a.cfg)] == [key_a.pk]
    assert selectors.active_sp_key(sso_b.cfg).pk == key_b.pk
    assert list(selectors.sp_decryption_keys(signing_a.cfg)) == [key_a.fingerprint_sha256]
