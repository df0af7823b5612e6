"""Consent and ownership: may a workspace attach an account directly, or must the person accept an invitation?

The one place for the rule (docs/architecture.md, "Consent and ownership"). ``services.membership_add`` asks it,
and every way a workspace adds a person goes through that service: SCIM create (``scim/protocol/users.py``), SAML
just-in-time provisioning (``saml/services/login.py``), the member page and ``manage.py member --add`` /
``member_invite``.

A ``User`` is global. Without this rule any workspace's SCIM client or Owner could attach an account that belongs to
someone else by typing its email, then read its 2FA status and see its sign-ins. So a workspace attaches directly
only what it owns:

- an account it creates now (no prior existence), or one that never held a password or another membership (left
  behind by an earlier membership here); or
- an account whose email domain the workspace has verified (``workspaces.domains.email_domain_verified``).

Any other account (it has a usable password of its own, or a membership in another workspace) joins *pending
consent*: the membership exists (SCIM gets its resource, the IdP keeps working) but opens nothing and shows nothing
of the account until the person accepts the invitation emailed to its address.
"""

from __future__ import annotations

from .domains import email_domain_verified
from .models import Membership, User, Workspace


def account_existed(user: User, *, workspace: Workspace) -> bool:
    """The account is someone's already: it has a password of its own or a membership in another workspace."""
    if user.has_usable_password():
        return True
    return Membership.objects.filter(user=user).exclude(workspace=workspace).exists()


def consent_required(*, workspace: Workspace, user: User, created: bool) -> bool:
    """Whether attaching ``user`` to ``workspace`` must wait for the person's consent (an accepted invitation).

    ``created``: the account was created by this very action (a new account needs no consent).
    """
    if created or not account_existed(user, workspace=workspace):
        return False
    return not email_domain_verified(workspace.pk, user.email)
