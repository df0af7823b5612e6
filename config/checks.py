"""System checks (`manage.py check`) for deployment settings the portal cannot work without."""

from __future__ import annotations

import shutil
from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, Warning, register


@register(Tags.security, deploy=False)
def check_public_base_url(app_configs: Any, **kwargs: Any) -> list[CheckMessage]:
    problems: list[CheckMessage] = []
    url = settings.PUBLIC_BASE_URL
    if not url.startswith(("http://", "https://")):
        problems.append(Error(
            f"PUBLIC_BASE_URL must start with http:// or https:// (got {url!r}).",
            hint="Set PUBLIC_BASE_URL to the address people and identity providers use, e.g. https://gatehouse.example.com",
            id="gatehouse.E001",
        ))
    elif not settings.DEBUG and url == "http://127.0.0.1:8000":
        problems.append(Warning(
            "PUBLIC_BASE_URL is the development default; SAML entity IDs, ACS URLs and SCIM URLs will point at 127.0.0.1.",
            hint="Set PUBLIC_BASE_URL to the portal's public https:// address.",
            id="gatehouse.W001",
        ))
    return problems


@register(deploy=False)
def check_xmlsec1(app_configs: Any, **kwargs: Any) -> list[CheckMessage]:
    if shutil.which("xmlsec1") is None:
        return [Error(
            "The xmlsec1 program is not installed; SAML single sign-on cannot load IdP metadata.",
            hint="Install it: apt-get install xmlsec1 (the README's commands do this).",
            id="gatehouse.E002",
        )]
    return []


CONSOLE_EMAIL = "django.core.mail.backends.console.EmailBackend"


@register(Tags.security, deploy=True)
def check_email_backend(app_configs: Any, **kwargs: Any) -> list[CheckMessage]:
    """Invitations are how people join and consent (docs/architecture.md, "Consent and ownership"): in production
    they must leave the machine, not be printed to the log (where anyone reading it could accept them)."""
    if not settings.DEBUG and settings.EMAIL_BACKEND == CONSOLE_EMAIL:
        return [Warning(
            "EMAIL_BACKEND is the console backend: invitation emails are printed to the log, not sent.",
            hint="Set EMAIL_BACKEND=django.core.mail.backends.smtp.EmailBackend and EMAIL_HOST (docs/deploy.md, "
                 "\"Outgoing email\").",
            id="gatehouse.W002",
        )]
    return []
