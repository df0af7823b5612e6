"""This portal's SP key pair per workspace, and what it is used for: signed AuthnRequests, encrypted assertions.

Rollover never locks a workspace out (docs/saml.md, "SP key rollover"):

- the first key is active at once (nothing used a key before it);
- ``sp_key_prepare`` with an active key makes a **next** key: published in the SP metadata beside the active one
  (signing and encryption), and it already decrypts, so an IdP may switch to it whenever it imports it;
- ``sp_key_activate``: next becomes active (it signs AuthnRequests from now on); the old active key becomes
  **previous**: no longer published, still decrypting, so an IdP still encrypting to it keeps working;
- ``sp_key_retire``: previous becomes **retired**, and its private key is erased.

While SAML-only is enforced, a step that could refuse every login the IdP sends today needs a Test SSO showing it
will not: turning "require encrypted assertions" on needs a fresh test that arrived encrypted, and retiring the
previous key needs a test since the activation that was not encrypted to that key.
"""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from audit.record import Actor, record_event
from workspaces import services as ws
from workspaces.exceptions import ServiceError
from workspaces.models import Workspace
from workspaces.roles import Cap

from .. import selectors, sp_keys
from ..models import SamlSettings, SpKey, SpKeyState
from ..sp import sp_entity_id
from ._audit import workspace_target


def _locked_settings(workspace: Workspace, actor: Actor) -> SamlSettings:
    ws.require_capability(actor, workspace, Cap.SETTINGS_MANAGE)
    cfg = SamlSettings.objects.select_for_update().filter(workspace=workspace).first()
    if cfg is None:
        raise ServiceError("Set up the identity provider first; the SP key belongs to that set-up.")
    return cfg


def _saml_only(workspace: Workspace) -> bool:
    return bool(Workspace.objects.filter(pk=workspace.pk).values_list("saml_only", flat=True).first())


def _key_details(key: SpKey) -> dict[str, str]:
    return {"fingerprint_sha256": key.fingerprint_sha256, "not_valid_after": key.not_valid_after.isoformat()}


def _one(cfg: SamlSettings, state: str) -> SpKey | None:
    return SpKey.objects.select_for_update().filter(saml_settings=cfg, state=state).first()


@transaction.atomic
def sp_key_prepare(*, workspace: Workspace, actor: Actor) -> SpKey:
    """Generate a key pair: the workspace's first (active at once) or the next one of a rollover (published, decrypts,
    does not sign until ``sp_key_activate``). The private key is stored encrypted and never shown."""
    ws.require_capability(actor, workspace, Cap.SETTINGS_MANAGE)
    # Generated before the settings row is locked: an RSA 3072 key takes a fraction of a second to find.
    generated = sp_keys.generate(sp_entity_id(workspace.slug))
    cfg = _locked_settings(workspace, actor)
    if _one(cfg, SpKeyState.NEXT) is not None:
        raise ServiceError("A next SP key is already prepared: activate it first.")
    first = _one(cfg, SpKeyState.ACTIVE) is None
    now = timezone.now()
    key = SpKey.objects.create(
        saml_settings=cfg, cert_pem=generated.cert_pem, key_encrypted=sp_keys.protect(generated.key_pem),
        fingerprint_sha256=generated.fingerprint_sha256, not_valid_after=generated.not_valid_after,
        state=SpKeyState.ACTIVE if first else SpKeyState.NEXT, created_at=now, activated_at=now if first else None,
    )
    record_event(actor=actor, action="sso.sp_key_prepared", workspace=workspace, **workspace_target(workspace),
                 details={**_key_details(key), "state": key.state})
    return key


@transaction.atomic
def sp_key_activate(*, workspace: Workspace, actor: Actor) -> SpKey:
    """The next key becomes active (signs from now on); the active one becomes previous (still decrypts). A key that
    was previous already is retired: one grace period at a time."""
    cfg = _locked_settings(workspace, actor)
    new = _one(cfg, SpKeyState.NEXT)
    if new is None:
        raise ServiceError("There is no next SP key to activate: prepare one first.")
    now = timezone.now()
    retired = list(SpKey.objects.select_for_update().filter(saml_settings=cfg, state=SpKeyState.PREVIOUS))
    SpKey.objects.filter(pk__in=[k.pk for k in retired]).update(state=SpKeyState.RETIRED, retired_at=now,
                                                                 key_encrypted="")
    old = _one(cfg, SpKeyState.ACTIVE)
    if old is not None:
        old.state = SpKeyState.PREVIOUS
        old.save(update_fields=["state"])
    new.state, new.activated_at = SpKeyState.ACTIVE, now
    new.save(update_fields=["state", "activated_at"])
    record_event(actor=actor, action="sso.sp_key_activated", workspace=workspace, **workspace_target(workspace),
                 details={**_key_details(new), "previous": old.fingerprint_sha256 if old else "",
                          "retired": [k.fingerprint_sha256 for k in retired]})
    return new


@transaction.atomic
def sp_key_retire(*, workspace: Workspace, actor: Actor) -> SpKey:
    """End the grace period: the previous key stops decrypting and its private key is erased."""
    cfg = _locked_settings(workspace, actor)
    old = _one(cfg, SpKeyState.PREVIOUS)
    if old is None:
        raise ServiceError("There is no previous SP key to retire.")
    active = _one(cfg, SpKeyState.ACTIVE)
    if _saml_only(workspace):
        tested = cfg.last_test_succeeded_at
        if (active is None or active.activated_at is None or tested is None or tested < active.activated_at
                or cfg.last_test_result.get("decrypted_with") == old.fingerprint_sha256):
            raise ServiceError("SAML-only is enforced: run Test SSO first. Retiring is possible once a test since the "
                               "activation shows your IdP no longer encrypts to the previous certificate.")
    old.state, old.retired_at, old.key_encrypted = SpKeyState.RETIRED, timezone.now(), ""
    old.save(update_fields=["state", "retired_at", "key_encrypted"])
    record_event(actor=actor, action="sso.sp_key_retired", workspace=workspace, **workspace_target(workspace),
                 details=_key_details(old))
    return old


@transaction.atomic
def sp_options_set(*, workspace: Workspace, actor: Actor, sign_authn_requests: bool | None = None,
                   require_encrypted_assertions: bool | None = None) -> SamlSettings:
    """Turn signed AuthnRequests and required encryption on or off (``None``: unchanged). Both need an active key."""
    cfg = _locked_settings(workspace, actor)
    wanted = {
        "sign_authn_requests": cfg.sign_authn_requests if sign_authn_requests is None else sign_authn_requests,
        "require_encrypted_assertions": (cfg.require_encrypted_assertions if require_encrypted_assertions is None
                                         else require_encrypted_assertions),
    }
    before = {name: getattr(cfg, name) for name in wanted}
    if wanted == before:
        return cfg
    if any(wanted.values()) and _one(cfg, SpKeyState.ACTIVE) is None:
        raise ServiceError("Create the SP key first: signing requests and encrypted assertions both use it.")
    if wanted["require_encrypted_assertions"] and not before["require_encrypted_assertions"] and _saml_only(workspace):
        if not (selectors.test_is_fresh(cfg) and cfg.last_test_result.get("encrypted")):
            raise ServiceError("SAML-only is enforced: turn assertion encryption on at the IdP and run Test SSO "
                               "(it must arrive encrypted) before requiring encryption, so nobody is locked out.")
    for name, value in wanted.items():
        setattr(cfg, name, value)
    cfg.save(update_fields=list(wanted))
    record_event(actor=actor, action="sso.sp_options_changed", workspace=workspace, **workspace_target(workspace),
                 details={"before": before, "after": wanted})
    return cfg
