"""pysaml2's schema check, run by libxml2 instead of the pure-Python ``xmlschema`` package.

pysaml2 validates every signed element against the SAML 2.0 protocol schema before verifying its
signature (``saml2.sigver.validate_doc_with_schema``). That check is worth keeping, but xmlschema spends
~5 ms per element on it, more than everything else in a login. This module compiles the *same XSD files
pysaml2 ships* with lxml (network off, imports resolved to those local files) and installs a
``validate(doc)`` with the same contract (raises ``saml2.xml.schema.XMLSchemaError``). If the schemas
cannot be compiled, pysaml2's own validator stays in place: slower, never weaker.
"""

from __future__ import annotations

import logging
import threading
from importlib.resources import files
from typing import Any

import saml2.data.schemas as _schemas
from lxml import etree
from saml2.xml.schema import XMLSchemaError

logger = logging.getLogger(__name__)

_LOCAL = {
    "http://www.w3.org/TR/2002/REC-xmldsig-core-20020212/xmldsig-core-schema.xsd": "xmldsig-core-schema.xsd",
    "http://www.w3.org/TR/2002/REC-xmlenc-core-20021210/xenc-schema.xsd": "xenc-schema.xsd",
}


class _LocalResolver(etree.Resolver):
    def resolve(self, url: str, pubid: str | None, context: Any) -> Any:
        name = _LOCAL.get(url) or url.rsplit("/", 1)[-1]
        path = files(_schemas).joinpath(name)
        if path.is_file():
            return self.resolve_filename(str(path), context)
        return None


def _compile() -> etree.XMLSchema:
    # The W3C schema files carry a DOCTYPE for their own DTD: trusted local files, DTD loading still off.
    parser = etree.XMLParser(no_network=True, resolve_entities=False, load_dtd=False)
    parser.resolvers.add(_LocalResolver())
    doc = etree.parse(str(files(_schemas).joinpath("saml-schema-protocol-2.0.xsd")), parser)
    return etree.XMLSchema(doc)


_schema: etree.XMLSchema | None = None  # compiled once to prove the schemas load; used by the first thread
_local = threading.local()


def _thread_schema() -> etree.XMLSchema:
    # lxml validators keep an error log per object: one per thread, never shared between threads.
    schema = getattr(_local, "schema", None)
    if schema is None:
        schema = _local.schema = _compile()
    return schema


def validate(doc: str) -> None:
    """Same contract as ``saml2.xml.schema.validate``: raise ``XMLSchemaError`` when ``doc`` is invalid. The text of
    an element from the verified tree (``saml.verifier.OriginalXml``) is validated as that element, unparsed."""
    element = getattr(doc, "element", None)
    if element is not None:
        root = element
    else:
        parser = etree.XMLParser(no_network=True, resolve_entities=False, load_dtd=False)
        try:
            root = etree.fromstring(doc.encode("utf-8") if isinstance(doc, str) else doc, parser)
        except etree.XMLSyntaxError as exc:
            raise XMLSchemaError({"error": str(exc)}) from exc
    schema = _thread_schema()
    if not schema.validate(root):
        raise XMLSchemaError({"error": str(schema.error_log.last_error)})


def install() -> bool:
    """Point pysaml2's signature checker at the libxml2 validator. Idempotent."""
    global _schema
    import saml2.sigver as sigver

    if _schema is None:
        try:
            _schema = _local.schema = _compile()
        except Exception:  # noqa: BLE001 - keep pysaml2's own validator
            logger.exception("Could not compile the SAML schemas with lxml; keeping pysaml2's validator")
            return False
    sigver.validate_doc_with_schema = validate
    from .verifier import install_original_text, install_time_parse_cache

    install_original_text()
    install_time_parse_cache()
    return True
