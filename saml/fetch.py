"""Fetch IdP metadata from a URL: HTTPS only (HTTP only with DEBUG), bounded in time and size."""

from __future__ import annotations

import urllib.request

from django.conf import settings

from .xmlsafe import MAX_XML_BYTES


class FetchError(Exception):
    pass


def fetch_metadata_url(url: str, timeout: float = 10.0) -> bytes:
    if not (url.startswith("https://") or (settings.DEBUG and url.startswith("http://"))):
        raise FetchError("Metadata URLs must use https://.")
    request = urllib.request.Request(url, headers={"Accept": "application/samlmetadata+xml, application/xml"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as resp:  # noqa: S310 - scheme checked above
            if resp.status != 200:
                raise FetchError(f"The metadata URL answered HTTP {resp.status}.")
            body = resp.read(MAX_XML_BYTES + 1)
    except FetchError:
        raise
    except Exception as exc:  # noqa: BLE001 - network errors of every kind are one message for the admin
        raise FetchError(f"The metadata URL could not be fetched ({type(exc).__name__}).") from None
    if len(body) > MAX_XML_BYTES:
        raise FetchError("The metadata document is too large.")
    return body
