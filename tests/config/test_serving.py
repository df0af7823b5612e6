"""``config.serving``: gunicorn's workers close a connection at once unless the request left bytes unread.

Real loopback sockets: the client must always read the whole response, then the end of the stream; gunicorn's
own graceful close (drain, then close) runs exactly when request bytes are still waiting to be read.
"""

from __future__ import annotations

import socket

import pytest

from config import serving

RESPONSE = b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 5\r\n\r\nhello"


@pytest.fixture
def pair():
    """(server side, client side) of one loopback TCP connection."""
    listener = socket.create_server(("127.0.0.1", 0))
    client = socket.create_connection(listener.getsockname())
    server, _ = listener.accept()
    listener.close()
    yield server, client
    for s in (server, client):
        s.close()


@pytest.fixture
def graceful_calls(monkeypatch):
    """Stands in for gunicorn's close_graceful, recording the sockets it was asked to close."""
    calls = []

    def gunicorn_close(sock, timeout=2.0, max_drain=65536):
        calls.append(sock)
        sock.shutdown(socket.SHUT_WR)
        while sock.recv(4096):
            pass
        sock.close()

    monkeypatch.setattr(serving, "_gunicorn_close", gunicorn_close)
    return calls


def _read_all(sock: socket.socket) -> bytes:
    sock.settimeout(5)
    chunks = []
    while chunk := sock.recv(4096):
        chunks.append(chunk)
    return b"".join(chunks)


def test_a_fully_read_request_is_closed_at_once_and_the_client_gets_the_whole_response(pair, graceful_calls):
    server, client = pair
    client.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    server.settimeout(5)
    assert server.recv(4096).startswith(b"GET /")  # the worker read the whole request
    server.sendall(RESPONSE)
    serving.close_connection(server)  # the client has not closed: no waiting for it
    assert graceful_calls == []
    assert server.fileno() == -1  # closed
    assert _read_all(client) == RESPONSE


def test_unread_request_bytes_are_drained_as_gunicorn_does_so_no_reset_truncates_the_response(pair, graceful_calls):
    server, client = pair
    client.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n" + b"x" * 50_000)
    server.settimeout(5)
    server.recv(100)  # the worker answered early (say, 413) without reading the body
    server.sendall(RESPONSE)
    client.shutdown(socket.SHUT_WR)  # the client gives up sending; the drain sees its end of stream
    serving.close_connection(server)
    assert graceful_calls == [server]
    assert _read_all(client) == RESPONSE


def test_install_routes_gunicorns_close_through_close_connection_unless_told_to_keep_it(monkeypatch):
    from gunicorn import util

    original = util.close_graceful
    monkeypatch.setattr(util, "close_graceful", original)  # restored after the test
    monkeypatch.setattr(serving, "_gunicorn_close", None)
    monkeypatch.setenv("GUNICORN_GRACEFUL_CLOSE", "always")
    assert serving.install() is False and util.close_graceful is original
    monkeypatch.delenv("GUNICORN_GRACEFUL_CLOSE")
    assert serving.install() is True
    assert util.close_graceful is serving.close_connection and serving._gunicorn_close is original
    assert serving.install() is True and serving._gunicorn_close is original  # twice: still gunicorn's own behind it


def test_the_repository_gunicorn_config_installs_it_in_every_worker(monkeypatch):
    import runpy
    from pathlib import Path

    calls = []
    monkeypatch.setattr(serving, "install", lambda worker=None: calls.append(worker) or True)
    config = runpy.run_path(str(Path(__file__).resolve().parents[2] / "gunicorn.conf.py"))
    config["post_worker_init"]("worker")
    assert calls == ["worker"]
