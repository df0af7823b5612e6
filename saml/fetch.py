"""Fetch IdP metadata from a URL through the guarded outbound client (config.outbound): https only, public
addresses only (the metadata URL is typed by an Owner), bounded in time and size."""

from __future__ import annotations

from config import outbound

from .xmlsafe import MAX_XML_BYTES


class FetchError(Exception):
    pass


def fetch_metadata_url(url: str, timeout: float = 10.0) -> bytes:
    try:
        response = outbound.request(
            "GET", url, headers={"Accept": "application/samlmetadata+xml, application/xml"},
            timeout=timeout, max_bytes=MAX_XML_BYTES,
        )
    except outbound.OutboundError as exc:
        if exc.public == "The answer was too large.":
            raise FetchError("The metadata document is too large.") from None
        raise FetchError(f"The metadata URL could not be fetched: {exc.public}") from None
    if response.status != 200:
        raise FetchError(f"The metadata URL answered HTTP {response.status}.")
    return response.body
