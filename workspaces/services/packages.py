"""The connector API's package access check: decide, and audit the answer."""

from __future__ import annotations

from audit.record import Actor, record_decision

from ..models import ApiKey, Membership
from ..package_access import (
    ALLOWED_EVENT,
    DENIED_EVENT,
    UNREAD,
    DecisionRow,
    PackageDecision,
    Unread,
    package_access_decision,
)


def package_access_check(
    *, membership: Membership, repository_name: str, action: str, actor: Actor, api_key: ApiKey | None = None,
    decision_row: DecisionRow | Unread = UNREAD,
) -> PackageDecision:
    """Decide (``package_access.package_access_decision``) and audit the answer before returning it.

    Every call writes ``package.pulled`` / ``package.pushed`` / ``package.deleted`` when allowed and
    ``package.denied`` otherwise, naming the member, the key and the repository. A decision changes
    nothing, so there is no transaction to pair the event with: ``record_decision`` appends it in
    one self-committing statement (the workspace's chain is locked only while PostgreSQL runs it).
    ``decision_row``: the decision's inputs, when the caller read them with the API key (the access check).
    """
    decision = package_access_decision(
        membership=membership, repository_name=repository_name, action=action, row=decision_row
    )
    repository = decision.repository
    record_decision(
        actor=actor,
        action=ALLOWED_EVENT[action] if decision.allowed else DENIED_EVENT,
        workspace=membership.workspace_id,
        target_type="repository",
        target_id=repository.pk if repository else "",
        target_label=repository.name if repository else repository_name[:255],
        details={
            "action": action,
            "allowed": decision.allowed,
            "reason": decision.reason,
            "member": membership.user.email,
            "member_id": membership.pk,
            "permission": decision.permission,
            "api_key": {"id": api_key.pk, "prefix": api_key.prefix} if api_key else None,
        },
    )
    return decision
