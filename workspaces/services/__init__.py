"""Every change to workspaces, members, teams, repositories and API keys.

Each function is one use case: keyword-only, atomic, checks the actor's rights through
``roles``, writes its audit event in the same transaction, and leaves side effects for
``on_commit``. UI, API, SCIM and SAML all come through here so they share the same rules.

One module per entity; this package re-exports their public names, so callers keep writing
``from workspaces import services; services.membership_add(...)``. Deprovisioning (the outbox
and its runner) lives in ``workspaces.deprovisioning``; its service entry points are re-exported
here too.
"""

from __future__ import annotations

from ..deprovisioning.outbox import deprovision_job_requeue
from ..deprovisioning.revoke import membership_revoke_credentials
from ..deprovisioning.runner import deprovision_jobs_claim_due, deprovision_jobs_run
from ._common import actor_for_membership, require_capability
from .api_keys import API_KEY_PREFIX, api_key_create, api_key_revoke, api_key_sso_refusal_record
from .directory import (
    PROFILE_FIELDS,
    directory_may_grant_role,
    membership_detach,
    membership_link_subject,
    membership_rename,
    membership_update_profile,
    team_update_external_id,
)
from .domains import (
    domain_claim_add,
    domain_claim_record_check,
    domain_claim_remove,
    domain_claim_verify,
    domain_claims_expire,
    domain_claims_recheck,
)
from .entitlements import entitlement_grant, entitlement_revoke
from .invitations import (
    InvitationUnusable,
    invitation_accept,
    invitation_issue,
    invitation_resend,
    invitation_revoke,
    invitation_url,
)
from .memberships import (
    membership_add,
    membership_change_role,
    membership_deactivate,
    membership_reactivate,
    membership_record_login,
    membership_remove,
    membership_set_auditor,
    membership_set_visibility,
)
from .packages import package_access_check
from .repositories import repository_create, repository_grant, repository_revoke_grant
from .reviews import (
    ReviewCompleted,
    access_review_complete,
    access_review_decide,
    access_review_decide_many,
    access_review_start,
)
from .role_map import (
    ROLE_MAP_PRESETS,
    accepted_role_values,
    resolve_idp_role,
    role_map,
    role_map_apply_preset,
    role_map_remove,
    role_map_set,
    role_map_set_unknown,
)
from .teams import (
    team_add_member,
    team_add_members,
    team_create,
    team_delete,
    team_remove_member,
    team_remove_members,
    team_rename,
)
from .two_factor import (
    RECOVERY_CODE_COUNT,
    confirmed_totp_device,
    hash_recovery_code,
    normalise_recovery_code,
    two_factor_disable,
    two_factor_enrol_confirm,
    two_factor_enrol_start,
    two_factor_recovery_codes_regenerate,
    two_factor_verify,
    user_actor,
)
from .users import user_disable, user_enable, user_session_forget, user_session_record
from .workspaces import (
    user_get_or_create,
    workspace_create,
    workspace_set_api_key_sso_window,
    workspace_set_require_2fa,
    workspace_set_session_max_age,
    workspace_sign_everyone_out,
    workspace_update_policy,
)

__all__ = [
    "API_KEY_PREFIX",
    "PROFILE_FIELDS",
    "RECOVERY_CODE_COUNT",
    "ROLE_MAP_PRESETS",
    "ReviewCompleted",
    "access_review_complete",
    "access_review_decide",
    "access_review_decide_many",
    "access_review_start",
    "accepted_role_values",
    "resolve_idp_role",
    "role_map",
    "role_map_apply_preset",
    "role_map_remove",
    "role_map_set",
    "role_map_set_unknown",
    "actor_for_membership",
    "api_key_create",
    "api_key_revoke",
    "api_key_sso_refusal_record",
    "confirmed_totp_device",
    "deprovision_job_requeue",
    "deprovision_jobs_claim_due",
    "deprovision_jobs_run",
    "directory_may_grant_role",
    "domain_claim_add",
    "domain_claim_record_check",
    "domain_claim_remove",
    "domain_claim_verify",
    "domain_claims_expire",
    "domain_claims_recheck",
    "entitlement_grant",
    "entitlement_revoke",
    "membership_detach",
    "membership_link_subject",
    "membership_rename",
    "hash_recovery_code",
    "InvitationUnusable",
    "invitation_accept",
    "invitation_issue",
    "invitation_resend",
    "invitation_revoke",
    "invitation_url",
    "membership_add",
    "membership_change_role",
    "membership_deactivate",
    "membership_reactivate",
    "membership_record_login",
    "membership_remove",
    "membership_revoke_credentials",
    "membership_set_auditor",
    "membership_set_visibility",
    "membership_update_profile",
    "normalise_recovery_code",
    "package_access_check",
    "repository_create",
    "repository_grant",
    "repository_revoke_grant",
    "require_capability",
    "team_add_member",
    "team_add_members",
    "team_create",
    "team_delete",
    "team_remove_member",
    "team_remove_members",
    "team_rename",
    "team_update_external_id",
    "two_factor_disable",
    "two_factor_enrol_confirm",
    "two_factor_enrol_start",
    "two_factor_recovery_codes_regenerate",
    "two_factor_verify",
    "user_actor",
    "user_disable",
    "user_enable",
    "user_get_or_create",
    "user_session_forget",
    "user_session_record",
    "workspace_create",
    "workspace_set_api_key_sso_window",
    "workspace_set_require_2fa",
    "workspace_set_session_max_age",
    "workspace_sign_everyone_out",
    "workspace_update_policy",
]
