"""SCIM ids are matched exactly as Gatehouse serves them, and a member the directory has not linked yet is found by
the userName it shows (its email), so Okta's lookup before a create finds people added in the portal or by SSO."""

from __future__ import annotations

import pytest

from workspaces.models import Membership

from .conftest import okta_user
from .test_errors import assert_error


@pytest.mark.parametrize("variant", ["{id}%20", "%20{id}", "+{id}", "0{id}", "{id}.0", "{id}_0", "{id}e0",
                                     "%D9%A1", "-{id}", "99999999999999999999999"])
def test_a_user_id_written_differently_names_nobody(scim_a, variant):
    uid = scim_a.post("Users", okta_user("ids@corp.test")).json()["id"]
    assert scim_a.get(f"Users/{uid}").status_code == 200
    assert_error(scim_a.get("Users/" + variant.format(id=uid)), 404)
    assert_error(scim_a.call("PATCH", "Users/" + variant.format(id=uid), {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "replace", "value": {"active": False}}]}), 404)
    assert Membership.objects.get(pk=uid).is_active


@pytest.mark.parametrize("variant", ["{id}%20", "+{id}", "0{id}", "99999999999999999999999"])
def test_a_group_id_written_differently_names_nothing(scim_a, variant):
    gid = scim_a.post("Groups", {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
                                 "displayName": "Ids"}).json()["id"]
    assert scim_a.get(f"Groups/{gid}").status_code == 200
    assert_error(scim_a.get("Groups/" + variant.format(id=gid)), 404)


def test_a_member_not_linked_to_the_directory_is_found_by_its_email_as_username(world, scim_a):
    # member@alpha.test was added in the portal: no SCIM userName yet.
    assert Membership.objects.get(pk=world.member_a.pk).scim_username == ""
    found = scim_a.get('Users?filter=userName%20eq%20%22Member%40Alpha.test%22').json()
    assert found["totalResults"] == 1
    assert found["Resources"][0]["id"] == str(world.member_a.pk)
    assert found["Resources"][0]["userName"] == "member@alpha.test"


def test_a_deactivated_unlinked_member_is_not_found(world, scim_a):
    Membership.objects.filter(pk=world.member_a.pk).update(is_active=False)
    assert scim_a.get('Users?filter=userName%20eq%20%22member%40alpha.test%22').json()["totalResults"] == 0


@pytest.mark.parametrize("written", ["0{id}", "+{id}", "{id} ", "99999999999999999999999"])
def test_a_filter_on_an_id_written_differently_finds_nobody(world, scim_a, written):
    uid = scim_a.post("Users", okta_user("filter.ids@corp.test")).json()["id"]
    gid = scim_a.post("Groups", {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "F",
                                 "members": [{"value": uid}]}).json()["id"]
    assert scim_a.get(f'Users?filter=id%20eq%20%22{uid}%22').json()["totalResults"] == 1
    assert scim_a.get(f'Groups?filter=members.value%20eq%20%22{uid}%22').json()["totalResults"] == 1
    value = written.format(id=uid).replace(" ", "%20").replace("+", "%2B")
    assert scim_a.get(f'Users?filter=id%20eq%20%22{value}%22').json()["totalResults"] == 0
    assert scim_a.get(f'Groups?filter=members.value%20eq%20%22{value}%22').json()["totalResults"] == 0
    assert gid
