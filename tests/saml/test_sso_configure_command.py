"""manage.py sso_configure: same validation as the page, prints what to give the IdP."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from audit.models import AuditEvent
from saml.models import SamlSettings
from saml.sp import acs_url, login_url, sp_entity_id
from workspaces.models import DomainClaim

from .conftest import IDP_A
from .idp import idp_metadata, make_key


def test_it_configures_the_workspace_and_prints_the_sp_values(world, tmp_path):
    path = tmp_path / "idp.xml"
    path.write_text(idp_metadata(IDP_A, "https://idp.test/sso", make_key("idp-alpha")))
    out = StringIO()
    call_command("sso_configure", "alpha", "--metadata", str(path), "--email-domain", "alpha.test", "--jit",
                 "--idp-initiated", "--group-attribute", "memberOf", stdout=out)
    cfg = SamlSettings.objects.get(workspace=world.a)
    assert (cfg.idp_entity_id, cfg.idp_initiated, cfg.groups_attribute) == (IDP_A, True, "memberOf")
    claim = DomainClaim.objects.get(workspace=world.a)
    assert claim.domain == "alpha.test" and claim.verified_at is None  # claimed; routes /login/ once verified
    world.a.refresh_from_db()
    assert world.a.jit_provisioning is True
    text = out.getvalue()
    assert sp_entity_id("alpha") in text and acs_url("alpha") in text and login_url("alpha") in text
    assert (f'Email domain alpha.test: pending, does not route /login/ until verified. Publish TXT '
            f'_gatehouse-challenge.alpha.test "gatehouse-verification={claim.token}"') in text
    assert AuditEvent.objects.filter(workspace=world.a, action="sso.settings_changed", actor_kind="system").exists()


def test_it_refuses_metadata_without_a_certificate(world, tmp_path):
    path = tmp_path / "idp.xml"
    path.write_text('<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="x">'
                    '<md:IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">'
                    '<md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" '
                    'Location="https://idp.test/sso"/></md:IDPSSODescriptor></md:EntityDescriptor>')
    with pytest.raises(CommandError, match="no signing certificate"):
        call_command("sso_configure", "alpha", "--metadata", str(path))
    assert not SamlSettings.objects.exists()


def test_it_refuses_an_unknown_workspace(world, tmp_path):
    with pytest.raises(CommandError, match="No workspace"):
        call_command("sso_configure", "nope", "--metadata", str(tmp_path / "x.xml"))
