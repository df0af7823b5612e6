"""The one client for every request Gatehouse makes to an address an Owner typed (SIEM sinks, IdP metadata URLs).

An Owner-supplied URL is a way into the network Gatehouse runs in (SSRF). So every outbound request:

- is https (plain http only with ``OUTBOUND_ALLOW_HTTP``, a development setting), without credentials in the URL;
- resolves the host once, refuses it when any address is loopback, private, link-local (cloud metadata
  169.254.169.254 included), shared (100.64/10), multicast, reserved or unspecified, IPv4-mapped or NAT64 forms of
  those included, unless ``OUTBOUND_ALLOWED_NETWORKS`` lists the network (an on-premises SIEM, the test suite);
- connects to the address it checked (pinned: the name is not resolved again, so DNS rebinding gets nothing),
  with the host name still used for TLS verification and the Host header;
- follows at most ``max_redirects`` redirects, each checked the same way (none for POST);
- is bounded in time (the whole exchange, not per read) and in response size.

Failures raise ``OutboundError``: ``public`` is what an Owner may see (it never tells an open port from a closed
one or echoes a socket error), ``detail`` goes to the server log only.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urljoin, urlsplit

import urllib3
from django.conf import settings

log = logging.getLogger(__name__)

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Never reachable whatever is allowed: the cloud metadata endpoints (AWS, GCP, Azure, Alibaba, AWS over IPv6).
_ALWAYS_BLOCKED = tuple(
    ipaddress.ip_network(n) for n in ("169.254.169.254/32", "100.100.100.200/32", "fd00:ec2::254/128")
)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")

CONNECTION_FAILED = "Could not connect: connection failed."


class OutboundError(Exception):
    """An outbound request that did not complete. ``public``: safe to show an Owner; ``detail``: logs only."""

    def __init__(self, public: str, detail: str = "") -> None:
        super().__init__(public)
        self.public = public
        self.detail = detail or public


@dataclass(frozen=True)
class OutboundResponse:
    status: int
    body: bytes
    headers: Mapping[str, str] = field(default_factory=dict)


def _allowed_networks() -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    return [ipaddress.ip_network(n, strict=False) for n in getattr(settings, "OUTBOUND_ALLOWED_NETWORKS", [])]


def _embedded(ip: IPAddress) -> IPAddress:
    """The IPv4 address an IPv6 address stands for (IPv4-mapped, NAT64), else the address itself."""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return ip.ipv4_mapped
        if ip in _NAT64:
            return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return ip


def address_refusal(ip: IPAddress) -> str | None:
    """Why this address may not be reached ("private", "loopback"...), or None when it may."""
    target = _embedded(ip)
    if any(target in net for net in _ALWAYS_BLOCKED):
        return "a cloud metadata address"
    if any(target in net for net in _allowed_networks() if net.version == target.version):
        return None
    for attr, why in (
        ("is_unspecified", "unspecified"), ("is_loopback", "loopback"), ("is_link_local", "link-local"),
        ("is_multicast", "multicast"), ("is_private", "private"), ("is_reserved", "reserved"),
    ):
        if getattr(target, attr):
            return f"a {why} address"
    if not target.is_global:
        return "not a public address"
    return None


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str
    port: int
    path: str  # path and query, as sent in the request line

    @property
    def host_header(self) -> str:
        default = 443 if self.scheme == "https" else 80
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == default else f"{host}:{self.port}"


def parse_url(url: str) -> Target:
    """The URL's parts, or OutboundError when its form is refused (scheme, credentials, no host)."""
    try:
        parts = urlsplit((url or "").strip())
        port = parts.port
    except ValueError:
        raise OutboundError("The URL is not valid.") from None
    allow_http = getattr(settings, "OUTBOUND_ALLOW_HTTP", False)
    if parts.scheme != "https" and not (allow_http and parts.scheme == "http"):
        raise OutboundError("The URL must start with https://.")
    if parts.username is not None or parts.password is not None:
        raise OutboundError("The URL must not carry a user name or password.")
    host = (parts.hostname or "").rstrip(".")
    if not host:
        raise OutboundError("The URL has no host name.")
    path = parts.path or "/"
    if parts.query:
        path = f"{path}?{parts.query}"
    return Target(parts.scheme, host, port or (443 if parts.scheme == "https" else 80), path)


def check_literal_host(url: str) -> None:
    """Refuse, without any DNS lookup, a URL whose host is an address that may not be reached (or localhost).

    For forms: an immediate answer to the obvious cases. Names are resolved and checked when the request is made.
    """
    target = parse_url(url)
    if target.host.lower() == "localhost" or target.host.lower().endswith(".localhost"):
        if address_refusal(ipaddress.ip_address("127.0.0.1")) is not None:
            raise OutboundError("The URL points at this server (localhost); give an address reachable on the internet.")
        return
    try:
        ip = ipaddress.ip_address(target.host)
    except ValueError:
        return
    why = address_refusal(ip)
    if why:
        raise OutboundError(f"The URL points at {why}; give an address reachable on the internet.")


def resolve(target: Target) -> IPAddress:
    """The address to connect to: every address the name resolves to must be allowed (one bad one refuses)."""
    try:
        infos = socket.getaddrinfo(target.host, target.port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise OutboundError("Could not connect: the host name did not resolve.", f"{target.host}: {exc}") from None
    addresses: list[IPAddress] = []
    for info in infos:
        ip = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
        why = address_refusal(ip)
        if why:
            raise OutboundError(
                f"The URL points at {why}; give an address reachable on the internet.", f"{target.host} -> {ip}: {why}"
            )
        addresses.append(ip)
    if not addresses:
        raise OutboundError("Could not connect: the host name did not resolve.", f"{target.host}: no addresses")
    return addresses[0]


def request(
    method: str,
    url: str,
    *,
    body: bytes | None = None,
    headers: Mapping[str, str] | None = None,
    timeout: float = 10.0,
    max_bytes: int = 1_000_000,
    max_redirects: int = 3,
) -> OutboundResponse:
    """Send one request through the guard; the response of the last hop, whatever its status."""
    deadline = time.monotonic() + timeout
    redirects = max_redirects if method.upper() in ("GET", "HEAD") else 0
    current = url
    while True:
        response, location = _one_hop(method, current, body, headers or {}, deadline, max_bytes)
        if location is None:
            return response
        if redirects <= 0:
            raise OutboundError(
                f"The server answered with a redirect (HTTP {response.status}); give the final URL.",
                f"{current} -> {location}",
            )
        redirects -= 1
        current = urljoin(current, location)


def _remaining(deadline: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise OutboundError(CONNECTION_FAILED, "the whole exchange took longer than its time limit")
    return left


def _one_hop(
    method: str, url: str, body: bytes | None, headers: Mapping[str, str], deadline: float, max_bytes: int
) -> tuple[OutboundResponse, str | None]:
    target = parse_url(url)
    ip = resolve(target)
    left = _remaining(deadline)
    pool_kwargs: dict[str, object] = {
        "timeout": urllib3.Timeout(connect=min(left, 10.0), read=left),
        "retries": False,
        "maxsize": 1,
    }
    pool: urllib3.HTTPConnectionPool
    if target.scheme == "https":
        # Connect to the checked address; verify the certificate for the name (and send it as SNI).
        pool = urllib3.HTTPSConnectionPool(
            str(ip), target.port, server_hostname=target.host, assert_hostname=target.host,
            cert_reqs="CERT_REQUIRED", **pool_kwargs,  # type: ignore[arg-type]
        )
    else:
        pool = urllib3.HTTPConnectionPool(str(ip), target.port, **pool_kwargs)  # type: ignore[arg-type]
    try:
        with pool:
            resp = pool.urlopen(
                method, target.path, body=body, headers={**headers, "Host": target.host_header},
                redirect=False, preload_content=False, assert_same_host=False,
            )
            try:
                chunks: list[bytes] = []
                size = 0
                for chunk in resp.stream(65536):
                    _remaining(deadline)
                    size += len(chunk)
                    if size > max_bytes:
                        raise OutboundError("The answer was too large.", f"{url}: more than {max_bytes} bytes")
                    chunks.append(chunk)
            finally:
                resp.release_conn()
    except OutboundError as exc:
        log.warning("outbound %s %s refused: %s", method, url, exc.detail)
        raise
    except urllib3.exceptions.SSLError as exc:
        log.warning("outbound %s %s: TLS failed: %s", method, url, exc)
        raise OutboundError("Could not connect: the TLS certificate could not be verified.", str(exc)) from None
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        # Refused, reset, unreachable, timed out: one message, so an answer never tells an open port from a
        # closed or filtered one. The cause is in the server log.
        log.warning("outbound %s %s: connection failed: %s", method, url, exc)
        raise OutboundError(CONNECTION_FAILED, str(exc)) from None
    location = resp.headers.get("Location") if 300 <= resp.status < 400 else None
    return OutboundResponse(resp.status, b"".join(chunks), dict(resp.headers)), location
