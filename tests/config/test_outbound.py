"""The guarded outbound client (config.outbound): nothing an Owner types reaches this machine or its network.

Every test that proves a refusal points the client at a real listener on loopback and checks it received nothing.
"""

from __future__ import annotations

import ipaddress
import socket
import threading
import time

import pytest
from django.db import transaction

from audit.delivery import deliver_sink
from audit.models import AuditSink
from audit.services import audit_sink_create
from config import outbound
from saml.services import saml_settings_save
from tests.loopback import LoopbackServer
from workspaces.exceptions import ServiceError
from workspaces.services import actor_for_membership


def _resolving(monkeypatch, mapping: dict[str, str]) -> list[str]:
    """DNS for names under .example.test: each resolves to the address given (a rebinding attacker's DNS)."""
    real = socket.getaddrinfo
    asked: list[str] = []

    def getaddrinfo(host, port, *args, **kwargs):
        if host in mapping:
            asked.append(host)
            family = socket.AF_INET6 if ":" in mapping[host] else socket.AF_INET
            return [(family, socket.SOCK_STREAM, 6, "", (mapping[host], port))]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return asked


class TestWhichAddressesAreRefused:
    @pytest.mark.parametrize(
        "address",
        [
            "127.0.0.1", "127.8.9.10", "10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.169.254", "169.254.1.1",
            "100.64.0.1", "100.100.100.200", "0.0.0.0", "224.0.0.1", "240.0.0.1", "255.255.255.255", "192.0.2.1",
            "::1", "::", "fe80::1", "fc00::1", "fd00:ec2::254", "ff02::1", "::ffff:127.0.0.1", "::ffff:10.0.0.1",
            "64:ff9b::7f00:1", "64:ff9b::a9fe:a9fe", "2001:db8::1",
        ],
    )
    def test_internal_and_special_addresses_are_refused(self, address):
        assert outbound.address_refusal(ipaddress.ip_address(address)) is not None

    @pytest.mark.parametrize("address", ["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111", "::ffff:8.8.8.8"])
    def test_public_addresses_are_allowed(self, address):
        assert outbound.address_refusal(ipaddress.ip_address(address)) is None

    def test_an_allowed_network_opens_that_network_only(self, settings):
        settings.OUTBOUND_ALLOWED_NETWORKS = ["10.20.0.0/16"]
        assert outbound.address_refusal(ipaddress.ip_address("10.20.3.4")) is None
        assert outbound.address_refusal(ipaddress.ip_address("10.21.0.1")) is not None

    def test_cloud_metadata_stays_refused_even_inside_an_allowed_network(self, settings):
        settings.OUTBOUND_ALLOWED_NETWORKS = ["169.254.0.0/16", "100.64.0.0/10", "fd00::/8"]
        for address in ("169.254.169.254", "100.100.100.200", "fd00:ec2::254", "::ffff:169.254.169.254"):
            assert outbound.address_refusal(ipaddress.ip_address(address)) == "a cloud metadata address"


class TestNothingReachesTheInternalListener:
    def test_a_name_resolving_to_loopback_is_refused_before_connecting(self, loopback_server, monkeypatch):
        _resolving(monkeypatch, {"siem.example.test": "127.0.0.1"})
        with pytest.raises(outbound.OutboundError) as refused:
            outbound.request("GET", f"https://siem.example.test:{loopback_server.port}/")
        assert "loopback" in refused.value.public
        assert loopback_server.requests == []

    def test_one_internal_address_among_public_ones_refuses_the_name(self, loopback_server, monkeypatch):
        real = socket.getaddrinfo

        def getaddrinfo(host, port, *args, **kwargs):
            if host == "mixed.example.test":
                return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("8.8.8.8", port)),
                        (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port))]
            return real(host, port, *args, **kwargs)

        monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
        with pytest.raises(outbound.OutboundError):
            outbound.request("GET", f"https://mixed.example.test:{loopback_server.port}/")
        assert loopback_server.requests == []

    def test_plain_http_is_refused_without_the_development_setting(self, loopback_server, settings):
        settings.OUTBOUND_ALLOWED_NETWORKS = ["127.0.0.0/8"]
        with pytest.raises(outbound.OutboundError, match="https://"):
            outbound.request("GET", loopback_server.url("/"))
        assert loopback_server.requests == []

    def test_a_redirect_to_an_internal_address_is_not_followed(self, settings):
        settings.OUTBOUND_ALLOW_HTTP = True
        settings.OUTBOUND_ALLOWED_NETWORKS = ["127.0.0.1/32"]  # the first hop only
        inner = LoopbackServer(body=b"secret", host="127.0.0.2")
        outer = LoopbackServer(status=302, headers={"Location": inner.url("/latest/meta-data/", host="127.0.0.2")})
        try:
            with pytest.raises(outbound.OutboundError, match="loopback"):
                outbound.request("GET", outer.url("/metadata"))
            assert len(outer.requests) == 1 and inner.requests == []
        finally:
            inner.close()
            outer.close()

    def test_a_post_never_follows_a_redirect(self, loopback_server, outbound_to_loopback):
        loopback_server.status, loopback_server.headers = 307, {"Location": "/elsewhere"}
        with pytest.raises(outbound.OutboundError, match="redirect"):
            outbound.request("POST", loopback_server.url("/in"), body=b"{}")
        assert [r[1] for r in loopback_server.requests] == ["/in"]

    def test_the_checked_address_is_the_one_connected_to(self, loopback_server, outbound_to_loopback, monkeypatch):
        """Resolved once, then pinned: a DNS answer that changes after the check (rebinding) is never used, and
        the name still goes in the Host header."""
        asked = _resolving(monkeypatch, {"siem.example.test": "127.0.0.1"})
        response = outbound.request("GET", f"http://siem.example.test:{loopback_server.port}/x")
        assert response.status == 200 and asked == ["siem.example.test"]
        assert loopback_server.requests[0][2]["Host"] == f"siem.example.test:{loopback_server.port}"


class TestLimits:
    def test_an_answer_over_the_size_limit_is_refused(self, loopback_server, outbound_to_loopback):
        loopback_server.body = b"x" * 5000
        with pytest.raises(outbound.OutboundError, match="too large"):
            outbound.request("GET", loopback_server.url("/"), max_bytes=4096)

    def test_a_silent_server_is_given_up_on_within_the_time_limit(self, outbound_to_loopback):
        with socket.socket() as silent:  # accepts the connection, never answers
            silent.bind(("127.0.0.1", 0))
            silent.listen(1)
            started = time.monotonic()
            with pytest.raises(outbound.OutboundError) as failed:
                outbound.request("GET", f"http://127.0.0.1:{silent.getsockname()[1]}/", timeout=0.5)
            assert time.monotonic() - started < 5
        assert failed.value.public == outbound.CONNECTION_FAILED


class TestWhatAnOwnerSees:
    def test_a_closed_port_and_an_open_one_that_is_not_http_fail_the_same_way(self, outbound_to_loopback):
        with socket.socket() as closed:
            closed.bind(("127.0.0.1", 0))
            closed_port = closed.getsockname()[1]
        opened = socket.socket()
        opened.bind(("127.0.0.1", 0))
        opened.listen(5)

        def hang_up():
            conn, _ = opened.accept()
            conn.sendall(b"SSH-2.0-OpenSSH_9.2\r\n")
            conn.close()

        threading.Thread(target=hang_up, daemon=True).start()
        answers = []
        for port in (closed_port, opened.getsockname()[1]):
            with pytest.raises(outbound.OutboundError) as failed:
                outbound.request("POST", f"http://127.0.0.1:{port}/", body=b"{}", timeout=3)
            answers.append(failed.value.public)
        opened.close()
        assert answers == [outbound.CONNECTION_FAILED, outbound.CONNECTION_FAILED]


class TestSiemSinks:
    def test_a_sink_whose_name_later_resolves_to_loopback_delivers_nothing_there(
        self, world, loopback_server, monkeypatch
    ):
        with transaction.atomic():
            sink, _ = audit_sink_create(
                workspace=world.a, name="SIEM", url=f"https://siem.example.test:{loopback_server.port}/in",
                actor=actor_for_membership(world.owner_a, "password"),
            )
        _resolving(monkeypatch, {"siem.example.test": "127.0.0.1"})
        result = deliver_sink(sink.pk)
        assert not result.ok and loopback_server.requests == []
        sink = AuditSink.objects.get(pk=sink.pk)
        assert sink.last_error == (
            "could not deliver: The URL points at a loopback address; give an address reachable on the internet."
        )


class TestMetadataUrls:
    def test_an_owner_cannot_point_the_metadata_fetch_at_this_machine(self, world, loopback_server):
        for url in (f"https://127.0.0.1:{loopback_server.port}/", f"https://localhost:{loopback_server.port}/",
                    f"http://127.0.0.1:{loopback_server.port}/"):
            with pytest.raises(ServiceError) as refused, transaction.atomic():
                saml_settings_save(workspace=world.a, actor=actor_for_membership(world.owner_a, "password"),
                                   metadata_url=url)
            assert refused.value.field == "metadata_url"
        assert loopback_server.requests == []
