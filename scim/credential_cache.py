"""A short-lived cache of bearer/Basic SCIM credentials, so a SCIM request needs no credential query.

What is cached: the ``ScimCredential`` row with its workspace, keyed by (kind, key id) (public values,
hashed into the key). The secret is never cached, only the stored SHA-256 the presented secret is
compared with, exactly as on a database hit (``scim.auth``). Failed lookups are never cached.

Why it stays exact: every change that can stop a credential or move it clears its entry, in the
same process at once and again when the change commits (a request racing the change cannot put the
old row back for longer than the transaction):

* revocation, rotation (the old credential's ``expires_at``) and any other ``ScimCredential`` save
  or delete: ``post_save`` / ``post_delete`` on ``ScimCredential``;
* switching SCIM off, renaming the slug, deleting the workspace: ``post_save`` / ``post_delete`` on
  ``Workspace`` clears every credential of that workspace.

Expiry (``expires_at`` of a rotated credential) is checked on the cached row at every request, so a
rotation overlap still ends on time. Entries live ``SCIM_CREDENTIAL_CACHE_SECONDS`` (default 60)
in a shared cache (Redis). A process-local cache (``LocMemCache``, development without Redis)
cannot be cleared in other processes, so there entries live at most 2 seconds.
OAuth access tokens are not cached: their validity also depends on the approving Owner's
membership (``scim.oauth.approver_may_authorize``).
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import transaction

log = logging.getLogger(__name__)

_LOCAL_MAX_SECONDS = 2


def cache_key(kind: str, key_id: str) -> str:
    # Caller-controlled text never goes into a cache key as is.
    digest = hashlib.sha256(f"{kind}|{key_id[:64]}".encode("utf-8", "replace")).hexdigest()[:40]
    return f"gatehouse:scimcred:{digest}"


def _timeout() -> int:
    seconds = int(getattr(settings, "SCIM_CREDENTIAL_CACHE_SECONDS", 60))
    from django.core.cache import caches

    if "locmem" in type(caches["default"]).__module__:
        seconds = min(seconds, _LOCAL_MAX_SECONDS)
    return max(0, seconds)


def remember(credential: Any) -> None:
    """Cache a credential just read from the database (with its workspace loaded)."""
    timeout = _timeout()
    if not timeout:
        return
    try:
        cache.set(cache_key(credential.kind, credential.key_id), credential, timeout=timeout)
    except Exception:  # noqa: BLE001 - the cache is an optimisation; the database answers without it
        log.warning("SCIM credential cache unavailable", exc_info=True)


def _forget_keys(keys: list[str]) -> None:
    if not keys:
        return

    def delete() -> None:
        try:
            cache.delete_many(keys)
        except Exception:  # noqa: BLE001
            log.error("SCIM credential cache: could not clear %d entries", len(keys), exc_info=True)

    delete()
    # Again after commit: a request that read the old row before the commit may have cached it meanwhile.
    transaction.on_commit(delete)


def forget(credential: Any) -> None:
    """Drop a credential's entry now and when the current transaction commits."""
    _forget_keys([cache_key(credential.kind, credential.key_id)])


def forget_workspace(workspace_id: int) -> None:
    """Drop the entries of every credential of a workspace (SCIM switched off, slug changed, deleted)."""
    from .models import ScimCredential

    keys = [
        cache_key(kind, key_id)
        for kind, key_id in ScimCredential.objects.filter(workspace_id=workspace_id).values_list(
            "kind", "key_id"
        )
    ]
    _forget_keys(keys)


def _credential_changed(sender: Any, instance: Any, **kwargs: Any) -> None:
    forget(instance)


def _workspace_changed(sender: Any, instance: Any, **kwargs: Any) -> None:
    if instance.pk is not None:
        forget_workspace(instance.pk)


def connect_receivers() -> None:
    """Called from ``ScimConfig.ready``."""
    from django.db.models.signals import post_delete, post_save, pre_delete

    from workspaces.models import Workspace

    from .models import ScimCredential

    post_save.connect(_credential_changed, sender=ScimCredential, dispatch_uid="scim_credential_cache_save")
    post_delete.connect(
        _credential_changed, sender=ScimCredential, dispatch_uid="scim_credential_cache_delete"
    )
    post_save.connect(_workspace_changed, sender=Workspace, dispatch_uid="scim_credential_cache_ws_save")
    # pre_delete: the workspace's credentials still exist to be listed (their own post_delete also fires).
    pre_delete.connect(_workspace_changed, sender=Workspace, dispatch_uid="scim_credential_cache_ws_delete")
