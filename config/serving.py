"""How gunicorn's sync workers close a connection: at once, unless the request left bytes unread.

gunicorn 25+ closes every connection "gracefully" (RFC 9112 §9.6; ``gunicorn.util.close_graceful``): it
half-closes, then waits for the client to close its side, up to 2 s, so that request bytes still unread in
the kernel buffer cannot make the kernel answer with a reset that truncates the response. A sync worker
serves one request per connection (``Connection: close``) and sits idle through that wait: a round trip to
the client per request, 28% of a worker's wall time under wrk in bench/deprovision_bench.py.

``close_connection`` keeps the protection where it applies: when bytes of the request are still waiting to be
read (an unread body, pipelined requests), it drains them exactly as gunicorn does. When none are, nothing can
provoke the reset (the client was told to close and sends nothing more), so it half-closes and closes at
once. Installed by ``gunicorn.conf.py`` in each worker (``post_worker_init``); ``GUNICORN_GRACEFUL_CLOSE=always``
keeps gunicorn's own behaviour.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from typing import Any

_gunicorn_close: Callable[..., None] | None = None


def _pending(sock: socket.socket) -> bool:
    """Whether the peer sent bytes that were not read yet (or closed: an end of stream counts as not pending)."""
    try:
        return bool(sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT))
    except OSError:  # nothing to read now (BlockingIOError), or the socket is already unusable
        return False


def close_connection(sock: socket.socket, timeout: float = 2.0, max_drain: int = 65536) -> None:
    """Close ``sock`` after a response: drain first (gunicorn's graceful close) only if request bytes are unread."""
    if _gunicorn_close is not None and _pending(sock):
        _gunicorn_close(sock, timeout=timeout, max_drain=max_drain)
        return
    try:
        sock.shutdown(socket.SHUT_WR)
    except OSError:
        pass
    try:
        sock.close()
    except OSError:
        pass


def install(worker: Any = None) -> bool:
    """Make gunicorn's workers close through ``close_connection``. False (nothing changed) when this gunicorn has
    no graceful close or ``GUNICORN_GRACEFUL_CLOSE=always``."""
    global _gunicorn_close
    from gunicorn import util

    if os.environ.get("GUNICORN_GRACEFUL_CLOSE", "").lower() == "always" or not hasattr(util, "close_graceful"):
        return False
    if util.close_graceful is not close_connection:
        _gunicorn_close = util.close_graceful
        util.close_graceful = close_connection
    return True
