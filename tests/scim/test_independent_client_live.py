"""An independent SCIM implementation from PyPI talks to the live server: scim2-client for a user's
life cycle, and scim2-tester's discovery and CRUD checks."""

from __future__ import annotations

import pytest
from httpx2 import Client
from scim2_client.engines.httpx2 import SyncSCIMClient
from scim2_models import Email, Group, Name, PatchOp, PatchOperation, SearchRequest, User
from scim2_tester import Status, check_server

from .conftest import make_cred

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def scim2(world, live_server):
    cred = make_cred(world.owner_a, "bearer", name="scim2-client")
    http = Client(base_url=f"{live_server.url}/scim/v2/{world.a.slug}", headers=cred.requests_auth)
    client = SyncSCIMClient(http)
    client.discover()
    yield client
    http.close()


def test_scim2_client_discovers_and_runs_a_user_life_cycle(scim2):
    created = scim2.create(User(user_name="bjensen@example.com", name=Name(given_name="Barbara", family_name="Jensen"),
                                emails=[Email(value="bjensen@example.com", primary=True)]))
    assert created.id and created.user_name == "bjensen@example.com" and created.meta.version
    fetched = scim2.query(User, created.id)
    assert fetched.name.family_name == "Jensen"
    found = scim2.query(User, query_parameters=SearchRequest(filter='userName eq "BJENSEN@example.com"'))
    assert [u.id for u in found.resources] == [created.id]
    scim2.modify(User, created.id, PatchOp[User](operations=[
        PatchOperation[User](op=PatchOperation.Op.replace_, path="active", value=False),
    ]))
    assert scim2.query(User, created.id).active is False
    scim2.delete(User, created.id)


def test_scim2_tester_discovery_and_crud_checks_pass(world, scim2):
    # scim2-tester fills "role" with random canonical values, Owner included: let this workspace allow it.
    world.a.scim_may_grant_owner = True
    world.a.save(update_fields=["scim_may_grant_owner"])
    results = check_server(scim2, include_tags={"discovery", "crud"}, resource_types=["User", "Group"])
    failures = [(r.title, r.reason) for r in results if r.status in (Status.ERROR, Status.CRITICAL)]
    for title, reason in failures:
        print("scim2-tester:", title, "->", reason)
    assert results and not failures
    _ = Group  # the Group resource type is exercised by check_server's CRUD checks
