"""What the ACS layer tests share: this workspace's SP values and a signed response built from them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from saml.sp import acs_url, sp_entity_id
from tests.saml.conftest import IDP_A
from tests.saml.idp import build_response, make_key

SLUG = "alpha"
NOW = datetime(2026, 6, 1, 12, 0, 0, tzinfo=UTC)


def raw(**kw: Any) -> bytes:
    """A response from IdP A to workspace alpha, signed with its key, as bytes; ``kw`` overrides any part."""
    kw.setdefault("sp_entity_id", sp_entity_id(SLUG))
    kw.setdefault("acs_url", acs_url(SLUG))
    kw.setdefault("idp_entity_id", IDP_A)
    kw.setdefault("key", make_key("idp-alpha"))
    kw.setdefault("name_id", "member@alpha.test")
    kw.setdefault("now", NOW)
    return build_response(as_bytes=True, **kw)
