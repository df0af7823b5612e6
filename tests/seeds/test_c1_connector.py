"""ConductorOne (C1), on Gatehouse: the governance tool reads the workspace, its members and teams through the
connector API with a service key (C1's connector is configured with an API key), following ``next`` links. What it
reads must follow what the IdP did through SCIM: a new member, a rename (same id, new email), a deactivation, a team
push. A key with narrower scopes reads a narrower roster.
"""

from __future__ import annotations

from tests.scim.conftest import okta_user
from workspaces import services as ws


def _all(s, key: str, path: str) -> list[dict]:
    import requests

    rows: list[dict] = []
    response = s.api(key, path)
    while True:
        assert response.status_code == 200, response.text
        body = response.json()
        rows.extend(body["results"])
        if not body["next"]:
            return rows
        response = requests.get(body["next"], headers={"Authorization": f"Bearer {key}"}, timeout=30)


def test_the_roster_a_governance_tool_reads_follows_the_idp(setup_factory):
    s = setup_factory("bearer")
    _, c1 = ws.api_key_create(workspace=s.world.a, name="ConductorOne", scopes=["members:read", "teams:read"],
                              actor=s.owner_actor())
    _, teams_only = ws.api_key_create(workspace=s.world.a, name="teams only", scopes=["teams:read"],
                                      actor=s.owner_actor())
    org = s.api(c1).json()
    assert org["slug"] == "alpha"
    before = {m["id"]: m for m in _all(s, c1, "members/")}
    assert {m["role"] for m in before.values()} <= {"owner", "manager", "member", "collaborator"}
    assert all({"email", "active", "two_factor_enabled", "visibility"} <= set(m) for m in before.values())

    created = s.post("Users", {**okta_user("lee@alpha.test", given="Lee", external_id="00u5lee"), "costCenter": "9"})
    assert created.status_code == 201, created.text  # an attribute Gatehouse has no use for does not block the create
    uid = created.json()["id"]
    s.post("Groups", {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "Oncall",
                      "members": [{"value": uid}]})
    s.patch(f"Users/{uid}", {"op": "replace", "path": "userName", "value": "lee.chen@alpha.test"},
            {"op": "replace", "path": 'emails[type eq "work"].value', "value": "lee.chen@alpha.test"})
    s.patch(f"Users/{uid}", {"op": "replace", "value": {"active": False}})

    after = {m["id"]: m for m in _all(s, c1, "members/")}
    assert set(after) == set(before) | {int(uid)}
    lee = after[int(uid)]
    assert lee["email"] == "lee.chen@alpha.test" and lee["active"] is False
    teams = {t["name"]: t for t in _all(s, c1, "teams/")}
    assert "Oncall" in teams
    # A key with narrower rights sees a narrower roster.
    assert s.api(teams_only, "members/").status_code == 403
    assert s.api(teams_only, "teams/").status_code == 200
