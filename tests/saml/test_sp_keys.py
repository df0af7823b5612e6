"""Signed AuthnRequests and encrypted assertions, end to end with a test IdP that verifies and encrypts for real.

The IdP reads Gatehouse's published SP metadata like an admin importing it into Okta: it verifies the AuthnRequest's
Redirect-binding signature with the published signing certificate and encrypts the signed assertion to the published
encryption certificate.
"""

from __future__ import annotations

import pytest
from django.test import Client, override_settings

from audit.models import AuditEvent
from saml import services
from saml.models import SamlSettings, SpKey, SpKeyState
from workspaces.services import actor_for_membership

from .conftest import failures, post_acs
from .idp import IdpRefused, sp_certificates, verify_authn_request


def owner(world):
    return actor_for_membership(world.owner_a, "password")


def metadata(client: Client, slug: str = "alpha") -> str:
    response = client.get(f"/saml/{slug}/metadata/")
    assert response.status_code == 200
    return response.content.decode()


def redirect_to_idp(client: Client, slug: str = "alpha") -> str:
    response = client.get(f"/saml/{slug}/login/")
    assert response.status_code == 302
    return response["Location"]


def request_id_of(location: str, certs: list[str]) -> str:
    return verify_authn_request(location, certs).get("ID")


@pytest.fixture
def keyed_a(world, sso_a):
    """Workspace A with an active SP key, signing AuthnRequests."""
    services.sp_key_prepare(workspace=world.a, actor=owner(world))
    services.sp_options_set(workspace=world.a, actor=owner(world), sign_authn_requests=True)
    sso_a.cfg.refresh_from_db()
    return sso_a


def test_signed_request_and_encrypted_assertion_log_the_member_in(world, keyed_a):
    client = Client()
    published = metadata(client)
    location = redirect_to_idp(client)
    request_id = request_id_of(location, sp_certificates(published, "signing"))
    [encryption_cert] = sp_certificates(published, "encryption")
    response = post_acs(client, "alpha", keyed_a.response(
        name_id="member@alpha.test", in_response_to=request_id, encrypt_to=encryption_cert))
    assert response.status_code == 302, failures(world.a)
    assert response["Location"] == "/w/alpha/"
    assert AuditEvent.objects.filter(workspace=world.a, action="sso.login_succeeded").count() == 1


def test_the_idp_refuses_an_unsigned_request(world, sso_a):
    client = Client()
    with pytest.raises(IdpRefused, match="not signed"):
        verify_authn_request(redirect_to_idp(client), [])


def test_the_idp_refuses_a_tampered_request(world, keyed_a):
    client = Client()
    certs = sp_certificates(metadata(client), "signing")
    location = redirect_to_idp(client)
    tampered = location.replace("SigAlg=", "RelayState=%2Fevil&SigAlg=")
    with pytest.raises(IdpRefused, match="does not verify"):
        verify_authn_request(tampered, certs)


def test_the_idp_refuses_a_request_signed_by_another_key(world, keyed_a, sso_b):
    services.sp_key_prepare(workspace=world.b, actor=actor_for_membership(world.outsider_b, "password"))
    client = Client()
    certs_of_b = sp_certificates(metadata(client, "bravo"), "signing")
    with pytest.raises(IdpRefused, match="does not verify"):
        verify_authn_request(redirect_to_idp(client), certs_of_b)


def test_signing_off_sends_unsigned_requests_even_with_a_key(world, keyed_a):
    services.sp_options_set(workspace=world.a, actor=owner(world), sign_authn_requests=False)
    with pytest.raises(IdpRefused, match="not signed"):
        verify_authn_request(redirect_to_idp(Client()), [])


def test_plaintext_assertion_still_works_while_encryption_is_not_required(world, keyed_a):
    client = Client()
    request_id = request_id_of(redirect_to_idp(client), sp_certificates(metadata(client), "signing"))
    response = post_acs(client, "alpha", keyed_a.response(name_id="member@alpha.test", in_response_to=request_id))
    assert response.status_code == 302, failures(world.a)


def test_require_encryption_refuses_a_plaintext_assertion(world, keyed_a):
    services.sp_options_set(workspace=world.a, actor=owner(world), require_encrypted_assertions=True)
    client = Client()
    request_id = request_id_of(redirect_to_idp(client), sp_certificates(metadata(client), "signing"))
    response = post_acs(client, "alpha", keyed_a.response(name_id="member@alpha.test", in_response_to=request_id))
    assert response.status_code == 403
    assert failures(world.a) == ["encryption_required"]
    assert "accepts encrypted assertions only" in response.content.decode()


def test_require_encryption_accepts_an_encrypted_assertion(world, keyed_a):
    services.sp_options_set(workspace=world.a, actor=owner(world), require_encrypted_assertions=True)
    client = Client()
    published = metadata(client)
    request_id = request_id_of(redirect_to_idp(client), sp_certificates(published, "signing"))
    response = post_acs(client, "alpha", keyed_a.response(
        name_id="member@alpha.test", in_response_to=request_id, encrypt_to=sp_certificates(published, "encryption")[0]))
    assert response.status_code == 302, failures(world.a)


def test_options_need_an_active_key(world, sso_a):
    from workspaces.exceptions import ServiceError

    with pytest.raises(ServiceError, match="SP key first"):
        services.sp_options_set(workspace=world.a, actor=owner(world), require_encrypted_assertions=True)
    assert SamlSettings.objects.get(workspace=world.a).require_encrypted_assertions is False


def test_the_private_key_is_stored_encrypted(world, keyed_a):
    key = SpKey.objects.get(saml_settings=keyed_a.cfg)
    assert key.state == SpKeyState.ACTIVE
    assert "PRIVATE KEY" not in key.key_encrypted and key.key_encrypted.startswith("gAAAA")  # a Fernet token
    assert "PRIVATE" not in metadata(Client())


OTHER_KEY = override_settings(SAML_SP_KEY_ENCRYPTION_KEY="another key than the one the SP key was stored under")


def test_an_unreadable_sp_key_is_a_plain_error_page_never_a_500(world, keyed_a):
    with OTHER_KEY:
        response = Client().get("/saml/alpha/login/")
    assert response.status_code == 503
    assert "SP key cannot be read" in response.content.decode()


def test_an_unreadable_sp_key_refuses_encrypted_logins_as_decryption_failed(world, keyed_a):
    client = Client()
    published = metadata(client)
    request_id = request_id_of(redirect_to_idp(client), sp_certificates(published, "signing"))
    with OTHER_KEY:
        response = post_acs(client, "alpha", keyed_a.response(
            name_id="member@alpha.test", in_response_to=request_id,
            encrypt_to=sp_certificates(published, "encryption")[0]))
    assert response.status_code == 403 and failures(world.a) == ["decryption_failed"]


def test_pysaml2_reads_the_published_metadata_as_an_idp_would(world, keyed_a):
    """pysaml2's own metadata store (what a pysaml2 IdP imports) finds the SP's signing and encryption certificates."""
    from saml2.mdstore import MetadataStore

    from saml.sp import sp_entity_id

    store = MetadataStore(attrc=None, config=None)
    store.load("inline", metadata(Client()))
    entity = sp_entity_id("alpha")
    [(_, signing)] = store.certs(entity, "spsso", "signing")
    [(_, encryption)] = store.certs(entity, "spsso", "encryption")
    assert signing == encryption and "".join(signing.split()) in metadata(Client())
    assert store.service(entity, "spsso_descriptor", "assertion_consumer_service")
