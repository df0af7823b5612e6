"""System checks for SAML. (The xmlsec1 program itself is checked by config/checks.py.)"""

from __future__ import annotations

from django.core.checks import Error, register


@register()
def python_xmlsec_available(app_configs, **kwargs):  # noqa: ANN001, ANN201
    """The ACS verifies signatures in-process with python-xmlsec (saml/verifier.py)."""
    try:
        import xmlsec  # noqa: F401
    except ImportError:
        return [Error("python-xmlsec is not installed", hint="pip install xmlsec", id="saml.E002")]
    return []
