"""SAML test helpers: workspace A and B each with their own test IdP (keys generated at test time)."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qs, urlparse

import pytest
from django.test import Client

from audit.models import AuditEvent
from saml import services
from saml.models import IssuedAuthnRequest, SamlSettings
from saml.sp import acs_url, sp_entity_id
from workspaces.services import actor_for_membership

from .idp import build_response, idp_metadata, make_key

IDP_A = "http://www.okta.com/exkALPHA"
IDP_B = "http://www.okta.com/exkBRAVO"


@dataclass
class Sso:
    workspace: object
    cfg: SamlSettings
    entity_id: str
    key: object

    def response(self, *, name_id: str, **kw) -> str:
        slug = self.workspace.slug
        kw.setdefault("sp_entity_id", sp_entity_id(slug))
        kw.setdefault("acs_url", acs_url(slug))
        kw.setdefault("idp_entity_id", self.entity_id)
        kw.setdefault("key", self.key)
        return build_response(name_id=name_id, **kw)


def configure(workspace, owner, entity_id: str, key, **kw) -> SamlSettings:
    return services.saml_settings_save(
        workspace=workspace, actor=actor_for_membership(owner, "password"),
        metadata_xml=idp_metadata(entity_id, f"https://idp.test/{workspace.slug}/sso", key), **kw,
    )


@pytest.fixture(autouse=True)
def _quick_sp_keys(monkeypatch):
    """SP keys of 2048 bits in tests (the product makes 3072): the same code, a fraction of the generation time."""
    monkeypatch.setattr("saml.sp_keys.KEY_SIZE", 2048)


@pytest.fixture
def sso_a(world) -> Sso:
    key = make_key("idp-alpha")
    return Sso(world.a, configure(world.a, world.owner_a, IDP_A, key, email_domains=["alpha.test"]), IDP_A, key)


@pytest.fixture
def sso_b(world) -> Sso:
    key = make_key("idp-bravo")
    return Sso(world.b, configure(world.b, world.outsider_b, IDP_B, key, email_domains=["bravo.test"]), IDP_B, key)


def start_login(client: Client, slug: str, next_url: str = "") -> str:
    """GET the SP-initiated login; return the AuthnRequest ID the portal remembered."""
    url = f"/saml/{slug}/login/" + (f"?next={next_url}" if next_url else "")
    response = client.get(url)
    assert response.status_code == 302
    assert "SAMLRequest" in parse_qs(urlparse(response["Location"]).query)
    return IssuedAuthnRequest.objects.filter(workspace__slug=slug).latest("created_at").request_id


def post_acs(client: Client, slug: str, saml_response: str, relay_state: str = ""):
    data = {"SAMLResponse": saml_response}
    if relay_state:
        data["RelayState"] = relay_state
    return client.post(f"/saml/{slug}/acs/", data)


def failures(workspace) -> list[str]:
    return list(
        AuditEvent.objects.filter(workspace=workspace, action="sso.login_failed")
        .order_by("seq").values_list("details__reason", flat=True)
    )

