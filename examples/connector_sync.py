#!/usr/bin/env python3
"""Example identity-governance connector for the Gatehouse API (standard library only).

Reads one workspace, its members and its teams with an API key, following cursor pagination
to the end, and prints a roster summary the way a governance tool (an access-review or
ConductorOne-style connector) would sync it: inactive members are reported as disabled
accounts, not dropped.

    GATEHOUSE_API_KEY=gh_... python examples/connector_sync.py --base-url http://127.0.0.1:8000 --workspace acme

Use an Owner's or Manager's personal key, or a service key with the scopes members:read and
teams:read, to see the whole roster (a Member's key sees only public members and its own teams).

Provisioning, the other half of a governance tool (an access review decided to revoke, a request was approved):

    python examples/connector_sync.py ... --grants                      # every grant with its source
    python examples/connector_sync.py ... --grant team:12 --member ada@example.com
    python examples/connector_sync.py ... --revoke role:manager --member ada@example.com
    python examples/connector_sync.py ... --deactivate ada@example.com

Grants and revocations are idempotent, so a request whose answer was lost (a timeout, a 502 from a proxy, a 429)
is simply sent again (``--retries``, default 3): the second answer says ``changed: false`` and nothing is recorded
twice. These need a service key with grants:read plus roles:write, teams:write, repositories:write or members:write
(owners:write for anything touching an Owner), or a personal key whose member's role allows the change.
Exit codes: 0 done, 1 the API refused or failed, 2 bad usage.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from typing import Any


class ApiError(Exception):
    pass


class GatehouseClient:
    def __init__(self, base_url: str, workspace: str, key: str, timeout: float = 30.0) -> None:
        self.base = f"{base_url.rstrip('/')}/api/v1/workspaces/{urllib.parse.quote(workspace)}/"
        self.key = key
        self.timeout = timeout

    retries = 3

    def _request(self, url: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        """GET (or POST ``body``). Every call here is safe to repeat (reads, and idempotent grants and revocations),
        so a lost answer, a 5xx from a proxy or a 429 is retried with backoff."""
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Authorization": f"Bearer {self.key}", "Accept": "application/json"}
        if data is not None:
            headers["Content-Type"] = "application/json"
        for attempt in range(self.retries + 1):
            request = urllib.request.Request(url, data=data, headers=headers, method="POST" if data else "GET")
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310 (the operator's URL)
                    return json.load(response)
            except urllib.error.HTTPError as exc:
                if (exc.code >= 500 or exc.code == 429) and attempt < self.retries:
                    time.sleep(min(2**attempt * 0.5, 8))
                    continue
                try:
                    detail = json.load(exc).get("detail", "")
                except (ValueError, AttributeError):
                    detail = ""
                raise ApiError(f"{exc.code} from {url}: {detail or exc.reason}") from exc
            except (urllib.error.URLError, TimeoutError) as exc:
                if attempt < self.retries:
                    time.sleep(min(2**attempt * 0.5, 8))
                    continue
                raise ApiError(f"cannot reach {url}: {getattr(exc, 'reason', exc)}") from exc
        raise AssertionError("unreachable")

    def _get(self, url: str) -> dict[str, Any]:
        return self._request(url)

    def workspace(self) -> dict[str, Any]:
        return self._get(self.base)

    def paginate(self, resource: str, page_size: int = 200) -> Iterator[dict[str, Any]]:
        """Follow ``next`` until it is null (cursor pagination: stable while the roster changes)."""
        url: str | None = f"{self.base}{resource}/?page_size={page_size}"
        while url:
            page = self._get(url)
            yield from page["results"]
            url = page.get("next")


    def member_id(self, email: str) -> int:
        found = self._get(f"{self.base}members/?email={urllib.parse.quote(email)}")["results"]
        if not found:
            raise ApiError(f"no member {email} visible to this key")
        return int(found[0]["id"])

    def grant(self, entitlement: str, member_id: int) -> dict[str, Any]:
        return self._request(f"{self.base}grants/", {"entitlement": entitlement, "member": member_id})

    def revoke(self, entitlement: str, member_id: int) -> dict[str, Any]:
        return self._request(f"{self.base}grants/revoke/", {"entitlement": entitlement, "member": member_id})

    def deactivate(self, member_id: int, reason: str = "") -> dict[str, Any]:
        return self._request(f"{self.base}members/{member_id}/deactivate/", {"reason": reason})


def render_grants(grants: list[dict[str, Any]]) -> list[str]:
    return [
        f"GRANT {g['entitlement']} {g['principal']['type']}={g['principal']['label']} source={g['source']}"
        + (" idp_owned" if g["idp_owned"] else "")
        for g in grants
    ]


def provision(client: GatehouseClient, args: argparse.Namespace) -> list[str]:
    """One grant, revocation or deactivation, reported as a governance tool logs it."""
    if args.deactivate:
        result = client.deactivate(client.member_id(args.deactivate), reason="governance connector")
        return [f"{'DEACTIVATED' if result['changed'] else 'UNCHANGED (already inactive)'} {args.deactivate}"]
    entitlement = args.grant or args.revoke
    member = client.member_id(args.member)
    if args.grant:
        result = client.grant(entitlement, member)
        verb = "GRANTED" if result["changed"] else "UNCHANGED (already held)"
    else:
        result = client.revoke(entitlement, member)
        verb = "REVOKED" if result["changed"] else "UNCHANGED (not held)"
    return [f"{verb} {entitlement} {args.member}"]


def yes(flag: bool) -> str:
    return "yes" if flag else "no"


def render(workspace: dict[str, Any], members: list[dict[str, Any]], teams: list[dict[str, Any]]) -> list[str]:
    policy = workspace["policy"]
    active = [m for m in members if m["active"]]
    lines = [
        f"Workspace: {workspace['name']} ({workspace['slug']})",
        "Policy: " + " ".join(f"{k}={yes(v) if isinstance(v, bool) else v}" for k, v in sorted(policy.items())),
        f"Members: {len(members)} ({len(active)} active, {len(members) - len(active)} disabled, "
        f"{sum(m['two_factor_enabled'] for m in members)} with 2FA)",
        f"Teams: {len(teams)}",
        "",
    ]
    for m in sorted(members, key=lambda m: m["email"].lower()):
        teams_of = ",".join(t["name"] for t in m["teams"]) or "-"
        lines.append(
            f"MEMBER {m['email']} role={m['role']} status={'active' if m['active'] else 'disabled'} "
            f"2fa={yes(m['two_factor_enabled'])} visibility={m['visibility']} teams={teams_of}"
        )
    for t in sorted(teams, key=lambda t: t["name"].lower()):
        emails = ",".join(sorted(m["email"] for m in t["members"])) or "-"
        lines.append(f"TEAM {t['name']} members={len(t['members'])} {emails}")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Sync a Gatehouse workspace roster through its API.")
    parser.add_argument("--base-url", required=True, help="Gatehouse URL, e.g. https://gatehouse.example.com")
    parser.add_argument("--workspace", required=True, help="workspace slug")
    parser.add_argument("--key", default=os.environ.get("GATEHOUSE_API_KEY", ""), help="API key (default: $GATEHOUSE_API_KEY)")
    parser.add_argument("--page-size", type=int, default=200, help="items per page, 1-500")
    action = parser.add_mutually_exclusive_group()
    action.add_argument("--grants", action="store_true", help="list every grant with its source instead of the roster")
    action.add_argument("--grant", metavar="ENTITLEMENT", help="grant it (role:manager, team:12, repository:7:write)")
    action.add_argument("--revoke", metavar="ENTITLEMENT", help="revoke it")
    action.add_argument("--deactivate", metavar="EMAIL", help="deactivate this member")
    parser.add_argument("--member", metavar="EMAIL", help="the member to grant to or revoke from")
    parser.add_argument("--retries", type=int, default=3, help="retries of a lost or 5xx/429 answer (default 3)")
    args = parser.parse_args(argv)
    if not args.key:
        parser.error("give --key or set GATEHOUSE_API_KEY")
    if (args.grant or args.revoke) and not args.member:
        parser.error("--grant and --revoke need --member EMAIL")
    client = GatehouseClient(args.base_url, args.workspace, args.key)
    client.retries = max(0, args.retries)
    if args.grants or args.grant or args.revoke or args.deactivate:
        try:
            lines = (render_grants(list(client.paginate("grants", args.page_size))) if args.grants
                     else provision(client, args))
        except ApiError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        print("\n".join(lines))
        return 0
    try:
        workspace = client.workspace()
        members = list(client.paginate("members", args.page_size))
        teams = list(client.paginate("teams", args.page_size))
    except ApiError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print("\n".join(render(workspace, members, teams)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
