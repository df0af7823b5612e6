"""One hardened XML parser for everything SAML that arrives from outside.

Refuses DTDs and entity declarations (billion laughs, XXE; CVE-2025-23369 class) before any SAML library
sees the bytes, never touches the network, and refuses comments and processing instructions: IdPs do
not send them, and comments inside a NameID are the classic way to make two parsers read two different
identities from one signed text (CVE-2017-11427 family).
"""

from __future__ import annotations

import re

from lxml import etree

MAX_XML_BYTES = 256 * 1024

NS = {
    "samlp": "urn:oasis:names:tc:SAML:2.0:protocol",
    "saml": "urn:oasis:names:tc:SAML:2.0:assertion",
    "ds": "http://www.w3.org/2000/09/xmldsig#",
    "md": "urn:oasis:names:tc:SAML:2.0:metadata",
    "xenc": "http://www.w3.org/2001/04/xmlenc#",
}

_DTD_RE = re.compile(rb"<!\s*(DOCTYPE|ENTITY|ELEMENT|ATTLIST|NOTATION)", re.IGNORECASE)


class UnsafeXml(ValueError):
    """The bytes are not XML we are willing to process; ``code`` names why (for the audit log)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _parser() -> etree.XMLParser:
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_comments=False,  # keep them so we can refuse them
        remove_pis=False,
        remove_blank_text=False,
    )


def parse(data: bytes | str, *, allow_comments: bool = False) -> etree._Element:
    """Parse untrusted XML, or raise ``UnsafeXml``."""
    if isinstance(data, str):
        data = data.encode("utf-8")
    if len(data) > MAX_XML_BYTES:
        raise UnsafeXml("too_large", "The XML document is too large.")
    if _DTD_RE.search(data):
        raise UnsafeXml("dtd_refused", "XML with a DTD or entity declarations is refused.")
    try:
        root = etree.fromstring(data, parser=_parser())
    except etree.XMLSyntaxError as exc:
        raise UnsafeXml("malformed_xml", f"The XML is not well-formed: {exc.msg}") from None
    tree = root.getroottree()
    if tree.docinfo.doctype or tree.docinfo.internalDTD is not None:
        raise UnsafeXml("dtd_refused", "XML with a DTD or entity declarations is refused.")
    for node in root.iter(etree.Comment, etree.ProcessingInstruction, etree.Entity):
        if isinstance(node, etree._Entity):
            raise UnsafeXml("dtd_refused", "XML with entity references is refused.")
        if isinstance(node, etree._Comment) and allow_comments:
            continue
        raise UnsafeXml("comments_refused", "XML comments and processing instructions are refused.")
    return root


def qname(prefix: str, local: str) -> str:
    return f"{{{NS[prefix]}}}{local}"


def text_of(node: etree._Element | None) -> str:
    """The whole text content of an element (all text nodes joined), stripped."""
    if node is None:
        return ""
    return "".join(node.itertext()).strip()
