"""System checks: the SAML stack needs the xmlsec1 program (pysaml2 checks for it) and python-xmlsec."""

from __future__ import annotations

import os

from django.conf import settings
from django.core.checks import Error, register


@register()
def xmlsec_available(app_configs, **kwargs):  # noqa: ANN001, ANN201
    errors = []
    if not os.path.exists(settings.SAML_XMLSEC1_BINARY):
        errors.append(Error(
            f"xmlsec1 not found at {settings.SAML_XMLSEC1_BINARY}",
            hint="Install xmlsec1 (apt install xmlsec1) or set SAML_XMLSEC1_BINARY.", id="saml.E001",
        ))
    try:
        import xmlsec  # noqa: F401
    except ImportError:
        errors.append(Error("python-xmlsec is not installed", hint="pip install xmlsec", id="saml.E002"))
    return errors
