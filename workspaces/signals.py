"""Login/logout receivers that keep the session index (``UserSession``) for credential revocation.

A receiver on ``user_logged_in`` sees every login path (password, SAML, break-glass, admin)
without each of them remembering to call it. It indexes; it decides nothing.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.signals import user_logged_in, user_logged_out
from django.dispatch import receiver

from .services import user_session_forget, user_session_record


@receiver(user_logged_in, dispatch_uid="gatehouse_index_session")
def index_session(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    session = getattr(request, "session", None)
    if session is not None and user is not None and getattr(user, "pk", None):
        user_session_record(user=user, session_key=session.session_key)


@receiver(user_logged_out, dispatch_uid="gatehouse_forget_session")
def forget_session(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    session = getattr(request, "session", None)
    if session is not None:
        user_session_forget(session_key=session.session_key)
