"""What every service module shares: the actor of a member, the capability check, saving a change.

Private to the package: other apps use the names ``workspaces.services`` re-exports.
"""

from __future__ import annotations

from typing import Any

from django.db.models import F
from django.utils import timezone

from audit.record import Actor
from config.db import update_returning

from ..exceptions import LastOwnerError, NotAllowed
from ..models import Membership, Team, Workspace
from ..roles import Role, can


def actor_for_membership(membership: Membership, auth_method: str) -> Actor:
    """The audit actor for a person acting inside a workspace through a membership."""
    return Actor(
        kind="user",
        id=str(membership.user_id),
        label=membership.user.email,
        auth_method=auth_method,
        membership=membership,
    )


def require_capability(actor: Actor, workspace: Workspace, cap: str) -> None:
    """People need the capability in *this* workspace; system, SCIM and service actors were authorised upstream."""
    if actor.kind != "user":
        return
    acting = actor.membership
    if acting is None or acting.workspace_id != workspace.pk or not can(acting, cap):
        raise NotAllowed("Your role in this workspace does not allow this.")


def acting_membership(actor: Actor, workspace: Workspace) -> Membership | None:
    """The actor's own membership in ``workspace``, when the actor is a person there."""
    acting = actor.membership if actor.kind == "user" else None
    return acting if acting is not None and acting.workspace_id == workspace.pk else None


def touch(obj: Membership | Team, *fields: str) -> None:
    """Save ``fields`` of ``obj``, stamp ``updated_at`` and bump ``version`` (SCIM ``meta.version``).

    One ``UPDATE ... RETURNING version`` (``config.db.update_returning``): the version is incremented in the
    database (two concurrent changes never produce the same version) and comes back in the same statement
    for the ETag. No model signals are sent (none are connected to members or teams); the SCIM list index
    hears the change through its database triggers (``scim/list_index_triggers.py``).
    """
    obj.updated_at = timezone.now()
    obj.version = F("version") + 1
    update_returning(obj, [*fields, "updated_at", "version"], "version")


def lock_workspace(workspace: Workspace) -> Workspace:
    """The workspace row, locked: serialises Owner-count decisions (two Owners demoting each other cannot both win)."""
    return Workspace.objects.select_for_update().get(pk=workspace.pk)


def ensure_other_active_owner(membership: Membership) -> None:
    """Refuse a change that would leave the workspace without an active Owner."""
    lock_workspace(membership.workspace)
    others = (
        # An Owner pending consent may never accept: it does not keep the workspace governed.
        Membership.objects.filter(workspace_id=membership.workspace_id, role=Role.OWNER, is_active=True,
                                  consent_pending_since__isnull=True)
        .exclude(pk=membership.pk)
        .exists()
    )
    if not others:
        raise LastOwnerError(
            "This is the last active Owner of the workspace. Make another member Owner first."
        )


def member_target(membership: Membership) -> dict[str, Any]:
    """The audit target fields naming a member."""
    return {"target_type": "member", "target_id": membership.pk, "target_label": membership.user.email}
