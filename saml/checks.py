"""System checks for SAML. (The xmlsec1 program itself is checked by config/checks.py.)"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.apps import AppConfig
from django.core.checks import CheckMessage, Error, register


@register()
def python_xmlsec_available(app_configs: Sequence[AppConfig] | None, **kwargs: Any) -> list[CheckMessage]:
    """The ACS verifies signatures in-process with python-xmlsec (saml/verifier.py)."""
    try:
        import xmlsec  # noqa: F401
    except ImportError:
        return [Error("python-xmlsec is not installed", hint="pip install xmlsec", id="saml.E002")]
    return []
