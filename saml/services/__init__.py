"""Every change SAML makes, one module per concern.

- ``idp_settings``: IdP metadata (pasted or by URL), attribute mapping, email domains, metadata refresh.
- ``login``: AuthnRequests, turning a verified assertion into a member of this workspace (JIT), Test SSO,
  the replay store and its housekeeping.
- ``group_sync``: IdP groups -> teams and org roles, and the mappings Owners define.
- ``enforcement``: SAML-only on/off and the break-glass recovery codes.
- ``sp_key``: this portal's SP key pair per workspace (rollover), signed AuthnRequests, required encryption.

Keyword-only, atomic, audited in the same transaction (``audit.record.record_event``), rights through
``workspaces.roles``; member and team changes go through ``workspaces.services`` so SSO, SCIM and the UI
share one set of rules and one audit trail. Callers import from here (``from saml import services``).
"""

from __future__ import annotations

from ._audit import saml_actor
from .enforcement import (
    break_glass_codes_prepare,
    break_glass_codes_prepared,
    break_glass_codes_regenerate,
    break_glass_failed_record,
    break_glass_retry_after,
    break_glass_use,
    saml_only_set,
)
from .group_sync import group_mapping_create, group_mapping_delete, group_sync_apply, group_sync_set
from .idp_settings import (
    MetadataPreview,
    pending_summary,
    saml_metadata_preview,
    saml_metadata_refresh,
    saml_pending_discard,
    saml_settings_save,
)
from .login import (
    SsoOutcome,
    authn_request_issue,
    purge_expired,
    safe_next,
    sso_login_complete,
    sso_login_failed_record,
    sso_test_complete,
    verify_login_response,
)
from .sp_key import sp_key_activate, sp_key_prepare, sp_key_retire, sp_options_set

__all__ = [
    "SsoOutcome",
    "authn_request_issue",
    "break_glass_codes_prepare",
    "break_glass_codes_prepared",
    "break_glass_codes_regenerate",
    "break_glass_failed_record",
    "break_glass_retry_after",
    "break_glass_use",
    "group_mapping_create",
    "group_mapping_delete",
    "group_sync_apply",
    "group_sync_set",
    "pending_summary",
    "purge_expired",
    "safe_next",
    "saml_actor",
    "saml_metadata_refresh",
    "saml_only_set",
    "saml_pending_discard",
    "saml_settings_save",
    "saml_metadata_preview",
    "MetadataPreview",
    "sp_key_activate",
    "sp_key_prepare",
    "sp_key_retire",
    "sp_options_set",
    "sso_login_complete",
    "sso_login_failed_record",
    "sso_test_complete",
    "verify_login_response",
]
