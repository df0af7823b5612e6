"""SCIM and API credential checks, one layer at a time.

Each test has exactly one thing wrong with an otherwise valid credential: the secret, revocation, expiry, the
member behind it (deactivated, account disabled, credentials revoked since), the workspace of the URL, the
scopes. Deprovisioning revokes keys in a background task and stamps ``credentials_valid_after``; the tests
below leave those untouched so the layer under test is the only one that refuses.
"""

from __future__ import annotations

import base64
import secrets
from datetime import timedelta
from types import SimpleNamespace

import pytest
from django.test import RequestFactory
from django.utils import timezone
from oauth2_provider.models import AccessToken, Application, set_token_value
from rest_framework import exceptions

from audit.record import Actor
from scim import auth as scim_auth
from scim.models import CredentialKind, ScimCredential
from scim.oauth import workspace_scope
from scim.services import OAuthGrant, scim_credential_create, scim_oauth_client_create
from workspaces import credentials
from workspaces.api import authentication as api_auth
from workspaces.api.permissions import KeyAllows
from workspaces.credentials import LAST_USED_EVERY, hash_secret
from workspaces.models import ApiKey
from workspaces.roles import ApiScope, Cap
from workspaces.services import actor_for_membership, api_key_create

SETUP = Actor.system("test set-up")


# ============================================================================= SCIM


def enable(*workspaces) -> None:
    for ws in workspaces:
        ws.scim_enabled = True
        ws.save(update_fields=["scim_enabled"])


def scim_credential(world, kind: str = CredentialKind.BEARER, workspace=None):
    workspace = workspace or world.a
    owner = world.owner_a if workspace == world.a else world.outsider_b
    enable(workspace)
    return scim_credential_create(workspace=workspace, kind=kind, name=f"Okta {kind}",
                                  actor=actor_for_membership(owner, "password"))


def header(kind: str, shown: str) -> str:
    if kind == CredentialKind.BEARER:
        return f"Bearer {shown}"
    return "Basic " + base64.b64encode(shown.encode()).decode()


def scim(authorization: str, slug: str = "alpha"):
    request = RequestFactory().get(f"/scim/v2/{slug}/Users", HTTP_AUTHORIZATION=authorization,
                                   REMOTE_ADDR="203.0.113.9")
    return scim_auth.authenticate_scim_request(request, slug)


def scim_status(authorization: str, slug: str = "alpha") -> int:
    try:
        scim(authorization, slug)
    except scim_auth.ScimAuthError as exc:
        return exc.status
    return 200


@pytest.mark.parametrize("kind", [CredentialKind.BEARER, CredentialKind.BASIC])
def test_scim_credential_authenticates_for_its_own_workspace(world, kind):
    credential, shown = scim_credential(world, kind)
    principal = scim(header(kind, shown))
    assert principal.workspace == world.a
    assert principal.credential == credential
    assert principal.auth_method == {"bearer": "scim_bearer", "basic": "scim_basic"}[kind]
    assert principal.actor.kind == "scim_client" and principal.actor.id == str(credential.pk)


@pytest.mark.parametrize("kind", [CredentialKind.BEARER, CredentialKind.BASIC])
def test_scim_secret_is_compared(world, kind):
    credential, shown = scim_credential(world, kind)
    wrong = shown[:-4] + ("AAAA" if not shown.endswith("AAAA") else "BBBB")
    assert scim_status(header(kind, wrong)) == 401


def test_scim_key_id_of_one_kind_does_not_authenticate_as_the_other(world):
    credential, shown = scim_credential(world, CredentialKind.BEARER)
    secret = shown  # the whole gs_ token is the secret of a bearer credential
    basic = "Basic " + base64.b64encode(f"{credential.key_id}:{secret}".encode()).decode()
    assert scim_status(basic) == 401


def test_scim_credential_without_a_stored_secret_never_matches(world):
    credential, _ = scim_credential(world, CredentialKind.BASIC)
    credential.secret_hash = ""
    presented = scim_auth._Presented(CredentialKind.BASIC, credential.key_id, "")
    # Hashing "" would equal the stand-in hash: the empty stored secret itself must refuse.
    assert scim_auth._resolve_key_credential(presented, credential) is None


def test_scim_cached_credential_is_checked_like_a_fresh_one(world):
    credential, shown = scim_credential(world, CredentialKind.BASIC)
    key_id, _, secret = shown.partition(":")
    good = scim_auth._Presented(CredentialKind.BASIC, key_id, secret)
    bad = scim_auth._Presented(CredentialKind.BASIC, key_id, secret + "x")
    assert scim_auth._resolve_key_credential(good, credential) == credential
    assert scim_auth._resolve_key_credential(bad, credential) is None
    assert scim_auth._resolve_key_credential(good) == credential  # from the database


def test_scim_revoked_credential_is_refused(world):
    credential, shown = scim_credential(world)
    ScimCredential.objects.filter(pk=credential.pk).update(revoked_at=timezone.now())
    assert scim_status(header(CredentialKind.BEARER, shown)) == 401


def test_scim_expired_credential_is_refused(world):
    credential, shown = scim_credential(world)
    ScimCredential.objects.filter(pk=credential.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert scim_status(header(CredentialKind.BEARER, shown)) == 401


def test_scim_credential_expiring_later_still_works(world):
    credential, shown = scim_credential(world)
    ScimCredential.objects.filter(pk=credential.pk).update(expires_at=timezone.now() + timedelta(minutes=5))
    assert scim_status(header(CredentialKind.BEARER, shown)) == 200


def test_scim_credential_of_workspace_a_is_refused_on_workspace_b(world):
    enable(world.b)
    _, shown = scim_credential(world)
    assert scim_status(header(CredentialKind.BEARER, shown), slug="bravo") == 401


def test_scim_switched_off_is_403_for_a_valid_credential(world):
    _, shown = scim_credential(world)
    world.a.scim_enabled = False
    world.a.save(update_fields=["scim_enabled"])
    assert scim_status(header(CredentialKind.BEARER, shown)) == 403


@pytest.mark.parametrize("value", [
    "", "Bearer", "Bearer ", "Token abc", "Bearer gs_", "Bearer gs_abc", "Bearer gs__secret", "Bearer gs_abc_",
    "Basic !!!", "Basic " + base64.b64encode(b"no-colon").decode(), "Basic " + base64.b64encode(b":secret").decode(),
    "Basic " + base64.b64encode(b"key:").decode(), "Basic " + base64.b64encode(b"\xff\xfe:x").decode(),
    "Bearer " + "x" * 4097,
])
def test_scim_malformed_headers_are_401(world, value):
    scim_credential(world)
    assert scim_auth._parse_header(value).kind == ""
    assert scim_status(value) == 401


def test_scim_header_parsing_reads_each_mode(world):
    token = "gs_abc_s3cret"
    assert scim_auth._parse_header(f"  bearer {token} ") == scim_auth._Presented("bearer", "abc", token)
    assert scim_auth._parse_header("Bearer opaque-oauth") == scim_auth._Presented("oauth", "", "opaque-oauth")
    basic = base64.b64encode(b"kid:se:cret").decode()
    assert scim_auth._parse_header(f"BASIC {basic}") == scim_auth._Presented("basic", "kid", "se:cret")
    assert scim_auth._parse_header("Bearer " + "x" * 4096).kind == "oauth"
    assert scim_auth.split_bearer_token("gs_k_s") == ("k", "gs_k_s")
    assert scim_auth.split_bearer_token("xx_k_s") == ("", "")


def test_scim_error_headers_follow_the_status():
    assert scim_auth.ScimAuthError(401, "x").headers["WWW-Authenticate"].startswith("Bearer")
    assert scim_auth.ScimAuthError(429, "x", retry_after=7).headers == {"Retry-After": "7"}
    assert scim_auth.ScimAuthError(403, "x").headers == {}


def test_scim_repeated_failures_are_rate_limited(world):
    _, shown = scim_credential(world)
    statuses = [scim_status("Bearer gs_nope_wrong") for _ in range(60)]
    assert statuses[0] == 401 and statuses[-1] == 429


# ----------------------------------------------------------------------------- SCIM over OAuth


@pytest.fixture
def oauth_client(world):
    enable(world.a, world.b)
    credential, _ = scim_oauth_client_create(workspace=world.a, name="Entra",
                                             actor=actor_for_membership(world.owner_a, "password"),
                                             grant=OAuthGrant.CLIENT_CREDENTIALS)
    return credential


def oauth_token(application, scope: str, *, expires_in=timedelta(hours=1), user=None) -> str:
    raw = secrets.token_urlsafe(30)
    token = AccessToken(application=application, user=user, scope=scope, expires=timezone.now() + expires_in)
    set_token_value(token, raw)
    token.save()
    return raw


def test_oauth_token_with_the_workspace_scope_authenticates(world, oauth_client):
    raw = oauth_token(oauth_client.oauth_application, workspace_scope(world.a.pk), user=world.owner_a.user)
    principal = scim(f"Bearer {raw}")
    assert principal.credential == oauth_client and principal.auth_method == "oauth"


def test_oauth_expired_token_is_refused(world, oauth_client):
    raw = oauth_token(oauth_client.oauth_application, workspace_scope(world.a.pk), expires_in=timedelta(seconds=-1))
    assert scim_status(f"Bearer {raw}") == 401


def test_oauth_token_without_the_workspace_scope_is_refused(world, oauth_client):
    raw = oauth_token(oauth_client.oauth_application, f"read {workspace_scope(world.b.pk)}")
    assert scim_status(f"Bearer {raw}") == 401


def test_oauth_token_of_an_unbound_application_is_refused(world):
    app = Application.objects.create(name="other", client_type="confidential",
                                     authorization_grant_type="client-credentials")
    raw = oauth_token(app, workspace_scope(world.a.pk))
    assert scim_status(f"Bearer {raw}") == 401


def test_oauth_token_of_a_key_credential_application_is_refused(world, oauth_client):
    ScimCredential.objects.filter(pk=oauth_client.pk).update(kind=CredentialKind.BEARER)
    raw = oauth_token(oauth_client.oauth_application, workspace_scope(world.a.pk))
    assert scim_status(f"Bearer {raw}") == 401


def test_oauth_token_of_a_deactivated_approver_is_refused(world, oauth_client):
    raw = oauth_token(oauth_client.oauth_application, workspace_scope(world.a.pk), user=world.owner_a.user)
    world.owner_a.is_active = False
    world.owner_a.save(update_fields=["is_active"])
    assert scim_status(f"Bearer {raw}") == 401


def test_oauth_token_of_a_disabled_approver_account_is_refused(world, oauth_client):
    raw = oauth_token(oauth_client.oauth_application, workspace_scope(world.a.pk), user=world.owner_a.user)
    world.owner_a.user.is_active = False
    world.owner_a.user.save(update_fields=["is_active"])
    assert scim_status(f"Bearer {raw}") == 401


def test_oauth_token_issued_before_the_approvers_revocation_is_refused(world, oauth_client):
    raw = oauth_token(oauth_client.oauth_application, workspace_scope(world.a.pk), user=world.owner_a.user)
    world.owner_a.credentials_valid_after = timezone.now() + timedelta(seconds=1)
    world.owner_a.save(update_fields=["credentials_valid_after"])
    assert scim_status(f"Bearer {raw}") == 401


# ============================================================================= API keys


@pytest.fixture(autouse=True)
def _fresh_key_lookup():
    """Build the key lookup's SQL and converters again in each test, as a new process would.

    They are built once per process and database; without this, only the first test of a process runs the
    code that builds them, and a change to it goes unnoticed by every later test.
    """
    for query in (api_auth._LOOKUP, api_auth._LOOKUP_WITH_DECISION):
        query._plans.clear()
    api_auth._converters.clear()


def personal(membership, **kw):
    key, plain = api_key_create(workspace=membership.workspace, membership=membership, name="k", actor=SETUP, **kw)
    return key, plain


def service(workspace, scopes):
    return api_key_create(workspace=workspace, membership=None, name="svc", scopes=scopes, actor=SETUP)


def refused(raw: str, slug: str | None = "alpha") -> None:
    with pytest.raises(exceptions.AuthenticationFailed) as failed:
        api_auth.resolve_api_key(raw, slug)
    # One answer for every refusal: the caller cannot tell a wrong secret from a revoked key or another tenant.
    assert str(failed.value.detail) == "Invalid, expired or revoked API key."


def test_api_key_resolves_to_its_workspace_and_member(world):
    key, plain = personal(world.member_a)
    principal = api_auth.resolve_api_key(plain, "alpha")
    assert (principal.api_key, principal.workspace, principal.membership) == (key, world.a, world.member_a)
    assert api_auth.resolve_api_key(plain, None).workspace == world.a  # no slug in the URL: the key decides


def test_api_key_secret_is_compared(world):
    _, plain = personal(world.member_a)
    refused(plain[:-2] + ("xx" if not plain.endswith("xx") else "yy"))


def test_api_key_unknown_prefix_is_refused(world):
    refused("gh_00000000_" + "a" * 43)


def test_api_key_empty_or_malformed_is_refused_with_the_same_answer(world):
    refused("", None)
    refused("gh_", None)
    refused("not-a-key", "alpha")


@pytest.mark.parametrize("raw", ["", "gh_", "gh_abc", "gh__secret", "gh_abc_", "xx_abc_secret", "gh_" + "p" * 17 + "_s"])
def test_api_key_malformed_is_refused_before_any_lookup(raw):
    assert api_auth.split_key(raw) == ""


def test_api_key_prefix_of_sixteen_characters_is_read():
    assert api_auth.split_key("gh_" + "p" * 16 + "_s") == "p" * 16


def test_api_key_revoked_is_refused(world):
    key, plain = personal(world.member_a)
    ApiKey.objects.filter(pk=key.pk).update(revoked_at=timezone.now())
    refused(plain)


def test_api_key_expired_is_refused(world, monkeypatch):
    key, plain = personal(world.member_a)
    now = timezone.now()
    ApiKey.objects.filter(pk=key.pk).update(expires_at=now)
    monkeypatch.setattr(api_auth, "timezone", SimpleNamespace(now=lambda: now))
    refused(plain)  # expires_at is exclusive


def test_api_key_expiring_later_works(world):
    key, plain = personal(world.member_a)
    ApiKey.objects.filter(pk=key.pk).update(expires_at=timezone.now() + timedelta(minutes=5))
    assert api_auth.resolve_api_key(plain, "alpha").api_key == key


def test_api_key_of_a_deactivated_member_is_refused(world):
    _, plain = personal(world.member_a)
    # Only the flag: membership_deactivate would also stamp credentials_valid_after and revoke the key later.
    world.member_a.__class__.objects.filter(pk=world.member_a.pk).update(is_active=False)
    refused(plain)


def test_api_key_of_a_disabled_account_is_refused(world):
    _, plain = personal(world.member_a)
    world.member_a.user.__class__.objects.filter(pk=world.member_a.user_id).update(is_active=False)
    refused(plain)


def test_api_key_issued_before_the_members_credentials_were_revoked_is_refused(world):
    key, plain = personal(world.member_a)
    world.member_a.__class__.objects.filter(pk=world.member_a.pk).update(
        credentials_valid_after=key.created_at + timedelta(microseconds=1))
    refused(plain)


def test_api_key_issued_at_or_after_the_revocation_works(world):
    key, plain = personal(world.member_a)
    world.member_a.__class__.objects.filter(pk=world.member_a.pk).update(credentials_valid_after=key.created_at)
    assert api_auth.resolve_api_key(plain, "alpha").api_key == key


def test_api_key_of_workspace_a_is_refused_on_workspace_b(world):
    _, plain = personal(world.member_a)
    refused(plain, "bravo")
    _, svc = service(world.a, [ApiScope.MEMBERS_READ])
    refused(svc, "bravo")


def test_api_key_last_used_is_written_at_most_once_a_minute(world):
    key, plain = personal(world.member_a)
    first = api_auth.resolve_api_key(plain, "alpha").api_key.last_used_at
    assert first is not None
    assert ApiKey.objects.get(pk=key.pk).last_used_at == first
    assert api_auth.resolve_api_key(plain, "alpha").api_key.last_used_at == first
    old = first - LAST_USED_EVERY
    ApiKey.objects.filter(pk=key.pk).update(last_used_at=old)
    assert api_auth.resolve_api_key(plain, "alpha").api_key.last_used_at > old


def test_service_key_has_exactly_its_scopes(world):
    _, plain = service(world.a, [ApiScope.MEMBERS_READ])
    principal = api_auth.resolve_api_key(plain, "alpha")
    assert principal.is_service_key and principal.membership is None
    assert principal.has_scope(ApiScope.MEMBERS_READ)
    assert not principal.has_scope(ApiScope.AUDIT_READ)
    assert principal.actor.kind == "api_key" and principal.actor.auth_method == "api_key"


def test_personal_key_scopes_only_narrow(world):
    _, unscoped = personal(world.member_a)
    _, scoped = personal(world.member_a, scopes=[ApiScope.TEAMS_READ])
    assert api_auth.resolve_api_key(unscoped, "alpha").has_scope(ApiScope.AUDIT_READ)
    narrowed = api_auth.resolve_api_key(scoped, "alpha")
    assert narrowed.has_scope(ApiScope.TEAMS_READ) and not narrowed.has_scope(ApiScope.AUDIT_READ)
    assert narrowed.actor.membership == world.member_a


def test_presented_key_is_read_from_bearer_or_x_api_key():
    factory = RequestFactory()
    assert api_auth.key_from_request(factory.get("/", HTTP_AUTHORIZATION="bearer  gh_a_b ")) == "gh_a_b"
    assert api_auth.key_from_request(factory.get("/", HTTP_AUTHORIZATION="Basic abc", HTTP_X_API_KEY=" k ")) == "k"
    assert api_auth.key_from_request(factory.get("/", HTTP_AUTHORIZATION="Basic abc")) is None
    assert api_auth.key_from_request(factory.get("/")) is None


# ----------------------------------------------------------------------------- permissions: scopes and roles


def allows(principal, *, scope=None, cap=None) -> bool:
    view = SimpleNamespace(required_scope=scope)
    if cap is not None:
        view.required_cap = cap
    return KeyAllows().has_permission(SimpleNamespace(auth=principal), view)


def test_permission_refuses_a_request_without_a_principal():
    assert allows(None) is False


def test_permission_refuses_a_service_key_without_the_scope(world):
    _, plain = service(world.a, [ApiScope.MEMBERS_READ])
    principal = api_auth.resolve_api_key(plain, "alpha")
    assert allows(principal, scope=ApiScope.MEMBERS_READ) is True
    assert allows(principal, scope=ApiScope.AUDIT_READ) is False
    assert allows(principal) is True  # no scope required: any valid key of the workspace


def test_permission_asks_the_role_for_personal_keys(world):
    _, plain = personal(world.collaborator_a)
    principal = api_auth.resolve_api_key(plain, "alpha")
    assert allows(principal) is True  # WORKSPACE_VIEW by default
    assert allows(principal, cap=Cap.MEMBERS_LIST) is False
    _, plain = personal(world.member_a)
    assert allows(api_auth.resolve_api_key(plain, "alpha"), cap=Cap.MEMBERS_LIST) is True


def test_permission_scope_narrows_a_personal_key_before_the_role(world):
    _, plain = personal(world.owner_a, scopes=[ApiScope.TEAMS_READ])
    principal = api_auth.resolve_api_key(plain, "alpha")
    assert allows(principal, scope=ApiScope.AUDIT_READ, cap=Cap.AUDIT_VIEW) is False
    assert allows(principal, scope=ApiScope.TEAMS_READ, cap=Cap.TEAMS_LIST) is True


def test_permission_refuses_a_personal_key_of_a_deactivated_member(world):
    _, plain = personal(world.member_a)
    principal = api_auth.resolve_api_key(plain, "alpha")
    principal.membership.is_active = False  # deactivated after the key was resolved
    assert allows(principal) is False


def test_permission_without_a_declared_scope_takes_any_valid_key_of_the_workspace(world):
    _, plain = service(world.a, [ApiScope.MEMBERS_READ])
    principal = api_auth.resolve_api_key(plain, "alpha")
    bare_view = SimpleNamespace()  # declares neither required_scope nor required_cap
    assert KeyAllows().has_permission(SimpleNamespace(auth=principal), bare_view) is True
    _, plain = personal(world.collaborator_a)
    assert KeyAllows().has_permission(SimpleNamespace(auth=api_auth.resolve_api_key(plain, "alpha")), bare_view)


def test_permission_refusal_for_a_missing_scope_says_so(world):
    _, plain = service(world.a, [ApiScope.MEMBERS_READ])
    principal = api_auth.resolve_api_key(plain, "alpha")
    permission = KeyAllows()
    assert permission.message == "This API key does not allow this."
    assert permission.has_permission(SimpleNamespace(auth=principal), SimpleNamespace(required_scope=ApiScope.AUDIT_READ)) is False
    assert permission.message.startswith("This API key lacks the ") and permission.message.endswith(" scope.")
    assert "AUDIT_READ" in permission.message or "audit:read" in permission.message


def test_permission_refusal_names_the_scope_as_keys_are_issued_with_it(world):
    _, plain = service(world.a, [ApiScope.MEMBERS_READ])
    permission = KeyAllows()
    permission.has_permission(SimpleNamespace(auth=api_auth.resolve_api_key(plain, "alpha")),
                              SimpleNamespace(required_scope=ApiScope.AUDIT_READ))
    assert permission.message == "This API key lacks the 'audit:read' scope."


def test_hash_secret_is_sha256_hex():
    assert hash_secret("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


# ----------------------------------------------------------------------------- the shared credential rules, directly


def test_basic_credentials_must_be_strict_base64():
    # Lenient decoding would drop the "!" and read "id:pw": a header that is not base64 is refused instead.
    assert credentials.decode_basic("aWQ6cHc=") == ("id", "pw")
    assert credentials.decode_basic("aWQ6!cHc=") is None


def test_basic_credentials_split_at_the_first_colon():
    assert credentials.decode_basic(base64.b64encode(b":pw").decode()) == ("", "pw")
    assert credentials.decode_basic(base64.b64encode(b"id:").decode()) == ("id", "")


def test_a_token_id_of_the_maximum_length_is_read_and_one_longer_is_not():
    assert credentials.split_token("gh_" + "p" * 16 + "_s", "gh_", max_id_length=16) == ("p" * 16, "gh_" + "p" * 16 + "_s")
    assert credentials.split_token("gh_" + "p" * 17 + "_s", "gh_", max_id_length=16) == ("", "")
    assert credentials.split_token("gh_" + "p" * 40 + "_s", "gh_") == ("p" * 40, "gh_" + "p" * 40 + "_s")


def test_the_secret_is_compared_against_the_stored_hash_only():
    stored = hash_secret("s3cret")
    assert credentials.secret_matches("s3cret", stored) is True
    assert credentials.secret_matches("s3cret", hash_secret("other")) is False
    assert credentials.secret_matches("", hash_secret("")) is True  # an empty secret is hashed like any other
    assert credentials.secret_matches("", None) is False


def test_record_use_defaults_to_now_and_writes_only_that_column(world):
    key, _ = personal(world.member_a)
    before = timezone.now()
    assert credentials.record_use(key) is True
    stored = ApiKey.objects.get(pk=key.pk)
    assert before <= stored.last_used_at <= timezone.now()
    assert key.last_used_at == stored.last_used_at


def test_record_use_writes_exactly_one_interval_later(world):
    key, _ = personal(world.member_a)
    now = timezone.now()
    assert credentials.record_use(key, now) is True
    assert credentials.record_use(key, now + credentials.LAST_USED_EVERY - timedelta(microseconds=1)) is False
    assert key.last_used_at == now == ApiKey.objects.get(pk=key.pk).last_used_at
    assert credentials.record_use(key, now + credentials.LAST_USED_EVERY) is True
    assert ApiKey.objects.get(pk=key.pk).last_used_at == now + credentials.LAST_USED_EVERY
