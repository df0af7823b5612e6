"""Lenient on what an identity provider sends that does not apply, strict on what Gatehouse uses.

An extra attribute mapped in Okta, a custom extension schema, ``addresses[].primary``, a password, ``schemas``
repeated inside an extension's value: accepted, never stored, and named in the provisioning log. PATCH of a complex
attribute sets the sub-attributes given and leaves the others (RFC 7644 §3.5.2.1, §3.5.2.3).
"""

from __future__ import annotations

import pytest

from scim.models import ScimRequestLog
from workspaces.models import Membership

from .conftest import okta_user, patch_body
from .test_errors import assert_error

ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
GATEHOUSE = "urn:ietf:params:scim:schemas:extension:gatehouse:2.0:User"
CUSTOM = "urn:ietf:params:scim:schemas:extension:acme:2.0:User"


def _last_log(world) -> ScimRequestLog:
    return ScimRequestLog.objects.filter(workspace=world.a).latest("id")


def _ignored(world) -> list[str]:
    """The names the provisioning log's newest row says were ignored (Okta's body always carries a password)."""
    summary = _last_log(world).summary
    if not summary.startswith("ignored: "):
        return []
    return summary.removeprefix("ignored: ").split("; ")[0].split(", ")


def _create(scim_a, **extra) -> dict:
    response = scim_a.post("Users", {**okta_user("lenient@corp.test"), **extra})
    assert response.status_code == 201, response.content
    return response.json()


class TestIgnoredOnCreate:
    def test_an_extra_core_attribute_is_ignored_and_named_in_the_log(self, world, scim_a):
        created = _create(scim_a, costCenter="4711", favouriteColour="blue")
        assert "costCenter" not in created and "favouriteColour" not in created
        assert _ignored(world) == ["password", "costCenter", "favouriteColour"]
        # The user was created with what Gatehouse uses.
        member = Membership.objects.get(pk=created["id"])
        assert member.user.email == "lenient@corp.test" and member.is_active

    def test_an_unknown_extension_schema_is_ignored(self, world, scim_a):
        created = _create(scim_a, schemas=["urn:ietf:params:scim:schemas:core:2.0:User", CUSTOM],
                          **{CUSTOM: {"badgeNumber": "B-12", "building": "North"}})
        assert CUSTOM not in created
        assert _ignored(world) == ["password", CUSTOM]

    def test_an_unknown_attribute_of_a_known_extension_is_ignored_and_the_known_ones_kept(self, world, scim_a):
        created = _create(scim_a, **{ENTERPRISE: {"department": "R&D", "badge": "B-12"}})
        assert created[ENTERPRISE]["department"] == "R&D" and "badge" not in created[ENTERPRISE]
        assert _ignored(world) == ["password", f"{ENTERPRISE}:badge"]

    def test_schemas_inside_an_extension_value_is_tolerated(self, world, scim_a):
        created = _create(scim_a, **{ENTERPRISE: {"schemas": [ENTERPRISE], "department": "Ops"}})
        assert created[ENTERPRISE]["department"] == "Ops"
        assert _ignored(world) == ["password"]

    def test_multi_valued_core_attributes_are_accepted(self, world, scim_a):
        created = _create(
            scim_a,
            addresses=[{"type": "work", "primary": True, "streetAddress": "1 Main St", "locality": "Springfield"}],
            phoneNumbers=[{"type": "work", "value": "+1 555 0100", "primary": True}],
            ims=[{"type": "xmpp", "value": "lenient@chat.test"}],
            photos=[{"type": "photo", "value": "https://photos.test/lenient.png"}],
            x509Certificates=[{"value": "MIIB"}],
        )
        assert Membership.objects.filter(pk=created["id"]).exists()

    def test_a_password_is_accepted_discarded_and_named(self, world, scim_a):
        created = _create(scim_a, password="S3cret-from-Okta")
        assert "password" not in created
        member = Membership.objects.get(pk=created["id"])
        assert not member.user.has_usable_password()
        log = _last_log(world)
        assert _ignored(world) == ["password"] and "S3cret" not in log.summary

    def test_what_gatehouse_uses_is_still_validated(self, world, scim_a):
        before = Membership.objects.count()
        assert_error(scim_a.post("Users", {**okta_user("bad@corp.test"), "costCenter": "1", "active": "maybe"}), 400)
        assert_error(scim_a.post("Users", {**okta_user("bad@corp.test"), "name": "Jane"}), 400)
        assert Membership.objects.count() == before


class TestPatch:
    @pytest.fixture
    def user(self, scim_a) -> dict:
        return _create(scim_a)

    def test_replace_without_path_keeps_the_sub_attributes_not_named(self, scim_a, user):
        response = scim_a.patch(f"Users/{user['id']}", patch_body({"op": "replace", "value": {"name": {"givenName": "Ali"}}}))
        assert response.status_code == 200, response.content
        assert response.json()["name"]["givenName"] == "Ali"
        assert response.json()["name"]["familyName"] == "User"
        assert scim_a.get(f"Users/{user['id']}").json()["name"]["familyName"] == "User"

    def test_replace_with_a_complex_path_keeps_the_sub_attributes_not_named(self, scim_a, user):
        response = scim_a.patch(f"Users/{user['id']}",
                                patch_body({"op": "replace", "path": "name", "value": {"familyName": "Khan"}}))
        assert response.status_code == 200
        assert response.json()["name"] == {**user["name"], "familyName": "Khan"}

    def test_an_operation_on_an_unknown_attribute_or_schema_is_ignored_and_named(self, world, scim_a, user):
        response = scim_a.patch(f"Users/{user['id']}", patch_body(
            {"op": "replace", "path": "costCenter", "value": "4711"},
            {"op": "add", "path": f"{CUSTOM}:badgeNumber", "value": "B-12"},
            {"op": "replace", "value": {"nickName": "Ali", "division": "Ops", f"{ENTERPRISE}:department": "Ops"}},
            {"op": "remove", "path": "costCenter"},
        ))
        assert response.status_code == 200, response.content
        body = response.json()
        assert body["nickName"] == "Ali" and body[ENTERPRISE]["department"] == "Ops"
        assert "costCenter" not in body and "division" not in body
        assert _ignored(world) == ["costCenter", f"{CUSTOM}:badgeNumber", "division"]

    def test_an_extension_value_carrying_schemas_is_accepted(self, scim_a, user):
        response = scim_a.patch(f"Users/{user['id']}", patch_body(
            {"op": "add", "path": ENTERPRISE, "value": {"schemas": [ENTERPRISE], "department": "Legal"}},
            {"op": "replace", "value": {GATEHOUSE: {"schemas": [GATEHOUSE], "allowedEnvironments": ["prod"]}}},
        ))
        assert response.status_code == 200, response.content
        assert response.json()[ENTERPRISE]["department"] == "Legal"
        assert response.json()[GATEHOUSE]["allowedEnvironments"] == ["prod"]

    def test_a_wrong_value_for_a_used_attribute_is_still_refused_and_nothing_changes(self, scim_a, user):
        assert_error(scim_a.patch(f"Users/{user['id']}", patch_body(
            {"op": "replace", "path": "name.givenName", "value": "Changed"},
            {"op": "replace", "path": "active", "value": "maybe"},
        )), 400)
        assert scim_a.get(f"Users/{user['id']}").json()["name"]["givenName"] == "Test"
