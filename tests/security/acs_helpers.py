"""What the ACS layer tests share: this workspace's SP values and a signed response built from them."""

from __future__ import annotations

import base64
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from django.utils import timezone
from lxml import etree

from saml import xmlsafe
from saml.sp import acs_url, sp_entity_id
from tests.saml.conftest import IDP_A
from tests.saml.idp import _sign, build_response, make_key

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


def resigned(change: Callable[[etree._Element], Any], **kw: Any) -> str:
    """A posted response whose assertion was changed by ``change`` and then signed by the IdP (the Response is not)."""
    kw.setdefault("now", timezone.now())
    root = etree.fromstring(raw(sign_assertion=False, sign_response=False, **kw))
    assertion = root.find(xmlsafe.qname("saml", "Assertion"))
    detached = etree.fromstring(etree.tostring(assertion))
    change(detached)
    placeholder = etree.Element(xmlsafe.qname("ds", "Signature"), Id="placeholder", nsmap={"ds": xmlsafe.NS["ds"]})
    detached.find(xmlsafe.qname("saml", "Issuer")).addnext(placeholder)
    root.replace(assertion, _sign(detached, make_key("idp-alpha")))
    return base64.b64encode(etree.tostring(root)).decode()
