"""A real DNS server on loopback (dnslib) for the domain verification tests: it serves the TXT records a test sets.

The ``dns`` fixture starts it on 127.0.0.1 at a random UDP port and points ``DOMAIN_VERIFICATION_NAMESERVERS`` /
``DOMAIN_VERIFICATION_PORT`` at it through pytest-django's ``settings`` (restored after the test). A name it holds
no record for is NXDOMAIN; ``fail = True`` makes it answer SERVFAIL; ``stop()`` leaves the port silent (timeout).
"""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
from dnslib import QTYPE, RCODE, RR, TXT
from dnslib.server import BaseResolver, DNSServer


class TxtZone(BaseResolver):
    def __init__(self) -> None:
        self.records: dict[str, list[str]] = {}
        self.fail = False
        self.queries: list[str] = []

    def resolve(self, request, handler):  # dnslib's hook
        reply = request.reply()
        name = str(request.q.qname).rstrip(".").lower()
        self.queries.append(name)
        if self.fail:
            reply.header.rcode = RCODE.SERVFAIL
        elif name not in self.records:
            reply.header.rcode = RCODE.NXDOMAIN
        elif request.q.qtype == QTYPE.TXT:
            for value in self.records[name]:
                reply.add_answer(RR(name, QTYPE.TXT, rdata=TXT(value), ttl=60))
        return reply


class LoopbackDns:
    """The server and its zone: ``set_txt(name, *values)``, ``remove(name)``."""

    def __init__(self) -> None:
        self.zone = TxtZone()
        probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        probe.bind(("127.0.0.1", 0))
        self.port = probe.getsockname()[1]
        probe.close()
        self.server = DNSServer(self.zone, address="127.0.0.1", port=self.port, logger=_Quiet())
        self.server.start_thread()

    def set_txt(self, name: str, *values: str) -> None:
        self.zone.records[name.rstrip(".").lower()] = list(values)

    def remove(self, name: str) -> None:
        self.zone.records.pop(name.rstrip(".").lower(), None)

    def stop(self) -> None:
        if self.server.isAlive():
            self.server.stop()
            self.server.server.server_close()


class _Quiet:
    """dnslib logs every query to stdout by default."""

    def __getattr__(self, name: str):
        return lambda *args, **kwargs: None


@pytest.fixture
def dns(settings) -> Iterator[LoopbackDns]:
    server = LoopbackDns()
    settings.DOMAIN_VERIFICATION_NAMESERVERS = ["127.0.0.1"]
    settings.DOMAIN_VERIFICATION_PORT = server.port
    settings.DOMAIN_VERIFICATION_TIMEOUT = 1.0
    try:
        yield server
    finally:
        server.stop()


def publish(dns: LoopbackDns, claim) -> None:
    """Put ``claim``'s proof in the zone, as its owner would."""
    dns.set_txt(f"_gatehouse-challenge.{claim.domain}", f"gatehouse-verification={claim.token}")
