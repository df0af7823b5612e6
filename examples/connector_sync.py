#!/usr/bin/env python3
"""Example identity-governance connector for the Gatehouse API (standard library only).

Reads one workspace, its members and its teams with an API key, following cursor pagination
to the end, and prints a roster summary the way a governance tool (an access-review or
ConductorOne-style connector) would sync it: inactive members are reported as disabled
accounts, not dropped.

    GATEHOUSE_API_KEY=gh_... python examples/connector_sync.py --base-url http://127.0.0.1:8000 --workspace acme

Use an Owner's or Manager's personal key, or a service key with the scopes members:read and
teams:read, to see the whole roster (a Member's key sees only public members and its own teams).
Exit codes: 0 synced, 1 the API refused or failed, 2 bad usage.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
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

    def _get(self, url: str) -> dict[str, Any]:
        request = urllib.request.Request(url, headers={"Authorization": f"Bearer {self.key}", "Accept": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310 (the operator's URL)
                return json.load(response)
        except urllib.error.HTTPError as exc:
            try:
                detail = json.load(exc).get("detail", "")
            except (ValueError, AttributeError):
                detail = ""
            raise ApiError(f"{exc.code} from {url}: {detail or exc.reason}") from exc
        except urllib.error.URLError as exc:
            raise ApiError(f"cannot reach {url}: {exc.reason}") from exc

    def workspace(self) -> dict[str, Any]:
        return self._get(self.base)

    def paginate(self, resource: str, page_size: int = 200) -> Iterator[dict[str, Any]]:
        """Follow ``next`` until it is null (cursor pagination: stable while the roster changes)."""
        url: str | None = f"{self.base}{resource}/?page_size={page_size}"
        while url:
            page = self._get(url)
            yield from page["results"]
            url = page.get("next")


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
    args = parser.parse_args(argv)
    if not args.key:
        parser.error("give --key or set GATEHOUSE_API_KEY")
    client = GatehouseClient(args.base_url, args.workspace, args.key)
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
