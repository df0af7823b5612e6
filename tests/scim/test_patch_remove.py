"""PATCH ``remove`` of each attribute the Schemas endpoint advertises for a User (RFC 7644 §3.5.2.2): the attribute
is gone afterwards, or back to the default docs/scim.md ("PATCH remove") names for it, or refused when required."""

from __future__ import annotations

import pytest

from workspaces import services as ws
from workspaces.models import Membership

from .conftest import okta_user, patch_body

ENT = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
GH = "urn:ietf:params:scim:schemas:extension:gatehouse:2.0:User"

FULL = {
    "nickName": "Ada", "profileUrl": "https://example.test/ada", "title": "Engineer", "userType": "Employee",
    "preferredLanguage": "en-GB", "locale": "en-GB", "timezone": "Europe/London",
    "phoneNumbers": [{"value": "+44 20 7946 0000", "type": "work"}], "ims": [{"value": "ada", "type": "xmpp"}],
    "photos": [{"value": "https://example.test/ada.png", "type": "photo"}],
    "addresses": [{"locality": "London", "type": "work"}], "entitlements": [{"value": "beta"}],
    "roles": [{"value": "reviewer"}], "x509Certificates": [{"value": "MIIB"}],
    "role": "manager", "product_environments": ["prod"],
    ENT: {"department": "R&D", "employeeNumber": "7"},
}


@pytest.fixture
def ada(world, scim_a):
    body = {**okta_user("ada@alpha.test", external_id="00u1ada"), **FULL}
    body["schemas"] = [*body["schemas"], ENT]
    response = scim_a.post("Users", body)
    assert response.status_code == 201, response.content
    return response.json()["id"]


def _remove(scim, uid: str, path: str):
    return scim.patch(f"Users/{uid}", patch_body({"op": "remove", "path": path}))


GONE = ["nickName", "profileUrl", "title", "userType", "preferredLanguage", "locale", "timezone", "phoneNumbers",
        "ims", "photos", "addresses", "entitlements", "roles", "x509Certificates", "displayName", "externalId",
        "name"]


@pytest.mark.parametrize("path", GONE)
def test_an_optional_attribute_removed_is_gone(scim_a, ada, path):
    response = _remove(scim_a, ada, path)
    assert response.status_code == 200, response.content
    assert path not in response.json()
    assert path not in scim_a.get(f"Users/{ada}").json()


def test_a_sub_attribute_removed_leaves_its_siblings(scim_a, ada):
    doc = _remove(scim_a, ada, "name.givenName").json()
    assert doc["name"] == {"familyName": "User"}
    doc = _remove(scim_a, ada, f"{ENT}:department").json()
    assert doc[ENT] == {"employeeNumber": "7"}


@pytest.mark.parametrize("path", ["role", f"{GH}:role"])
def test_role_removed_is_the_workspaces_default_role(world, scim_a, ada, path):
    ws.workspace_update_policy(workspace=world.a, actor=ws.actor_for_membership(world.owner_a, "password"),
                               default_role="collaborator")
    doc = _remove(scim_a, ada, path).json()
    assert doc["role"] == doc[GH]["role"] == "collaborator"
    assert Membership.objects.get(pk=ada).role == "collaborator"


@pytest.mark.parametrize("path", ["product_environments", f"{GH}:allowedEnvironments"])
def test_environments_removed_are_no_limit(scim_a, ada, path):
    doc = _remove(scim_a, ada, path).json()
    assert doc["product_environments"] == [] and doc[GH]["allowedEnvironments"] == []


def test_active_removed_is_true_its_default(scim_a, ada):
    scim_a.patch(f"Users/{ada}", patch_body({"op": "replace", "path": "active", "value": False}))
    assert _remove(scim_a, ada, "active").json()["active"] is True
    assert Membership.objects.get(pk=ada).is_active


def test_emails_removed_leave_the_login_email(scim_a, ada):
    doc = _remove(scim_a, ada, "emails").json()
    assert doc["emails"] == [{"value": "ada@alpha.test", "type": "work", "primary": True}]


def test_user_name_cannot_be_removed(scim_a, ada):
    response = _remove(scim_a, ada, "userName")
    assert response.status_code == 400 and response.json()["scimType"] == "mutability"


def test_password_removed_changes_nothing(scim_a, ada):
    before = scim_a.get(f"Users/{ada}").json()
    after = _remove(scim_a, ada, "password").json()
    assert {k: v for k, v in after.items() if k != "meta"} == {k: v for k, v in before.items() if k != "meta"}
