"""OAuth 2 for SCIM clients, on django-oauth-toolkit (DOT): no hand-written OAuth here.

Each DOT ``Application`` is bound to exactly one workspace through a ``ScimCredential`` of
kind ``oauth``; the only scope it may ask for or receive is ``scim:<workspace id>``. What we
add to DOT, at its extension points:

* ``ScimScopes`` (``SCOPES_BACKEND_CLASS``): the per-workspace scope.
* ``ScimOAuth2Validator`` (``OAUTH2_VALIDATOR_CLASS``): a revoked or expired credential's
  client cannot get tokens; a code or refresh token whose approving Owner is no longer an
  active Owner of the workspace is refused.
* ``ScimAuthorizationView``: the approval page ("Accept access" in Okta) opens only for a
  signed-in session holding a live grant for the client's workspace, with the Owner's
  ``settings.manage`` capability (``workspaces.access``, the one place for that rule).
"""

from __future__ import annotations

import hashlib
import re
from datetime import timedelta
from typing import Any
from urllib.parse import unquote_plus

from django.conf import settings
from django.db import transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils import timezone
from oauth2_provider.models import AccessToken, RefreshToken
from oauth2_provider.oauth2_validators import OAuth2Validator
from oauth2_provider.scopes import BaseScopes, get_scopes_backend
from oauth2_provider.views import AuthorizationView, TokenView
from oauthlib.oauth2.rfc6749.utils import scope_to_list

from audit.middleware import client_ip
from audit.record import record_event
from workspaces.access import access_workspace
from workspaces.credentials import authorization, decode_basic
from workspaces.models import Membership
from workspaces.roles import Cap, can

from . import ratelimit
from .models import CredentialKind, ScimCredential

SCOPE_PREFIX = "scim:"
_SCOPE_RE = re.compile(r"^scim:(\d{1,19})$")


def workspace_scope(workspace_id: int) -> str:
    """The one scope a workspace's SCIM OAuth client may hold."""
    return f"{SCOPE_PREFIX}{workspace_id}"


def credential_for_application(application: Any) -> ScimCredential | None:
    """The SCIM credential an Application is bound to (cached on the instance for one request)."""
    if application is None:
        return None
    cached = getattr(application, "_gatehouse_scim_credential", False)
    if cached is not False:
        return cached  # type: ignore[return-value]  # a credential or None once cached
    credential = (
        ScimCredential.objects.select_related("workspace")
        .filter(kind=CredentialKind.OAUTH, oauth_application_id=application.pk)
        .first()
    )
    application._gatehouse_scim_credential = credential
    return credential


def approver_may_authorize(user_id: int | None, workspace_id: int, issued_at: Any = None) -> bool:
    """Tokens minted from an Owner's approval live only while that person is an active Owner there.

    ``issued_at``: a revocation of the member's credentials (``credentials_valid_after``) after
    this instant kills the token too. Client-credentials tokens (no user) are not affected.
    """
    if user_id is None:
        return True
    membership = (
        Membership.objects.select_related("user").filter(workspace_id=workspace_id, user_id=user_id).first()
    )
    if membership is None or not membership.user.is_active or not can(membership, Cap.SETTINGS_MANAGE):
        return False
    valid_after = membership.credentials_valid_after
    return not (valid_after is not None and issued_at is not None and issued_at < valid_after)


def pkce_required(client_id: str) -> bool:
    """PKCE for public clients; SCIM clients are confidential (Okta's SCIM OAuth client sends no PKCE)."""
    from oauth2_provider.models import get_application_model

    client_type = get_application_model().objects.filter(client_id=client_id).values_list("client_type", flat=True).first()
    return client_type != "confidential"


class _ScopeDescriptions(dict):
    """``get_all_scopes()``: DOT looks descriptions up by name; workspace scopes are generated."""

    def __missing__(self, key: str) -> str:
        match = _SCOPE_RE.match(key or "")
        if match is None:
            raise KeyError(key)
        return "Provision users and groups of this workspace through SCIM"


class ScimScopes(BaseScopes):
    def get_all_scopes(self) -> dict[str, str]:
        return _ScopeDescriptions()

    def get_available_scopes(self, application: Any = None, request: Any = None, *args: Any, **kwargs: Any) -> list[str]:
        credential = credential_for_application(application)
        return [workspace_scope(credential.workspace_id)] if credential is not None else []

    def get_default_scopes(self, application: Any = None, request: Any = None, *args: Any, **kwargs: Any) -> list[str]:
        # Okta and Entra usually send no scope: they get the workspace's.
        return self.get_available_scopes(application, request)


def is_workspace_scope(scope: str) -> bool:
    """A scope of Gatehouse's own form (``scim:<id>``): the only kind that is ever checked, never ignored."""
    return bool(_SCOPE_RE.match(scope))


class ScimOAuth2Validator(OAuth2Validator):
    """DOT's validator with Gatehouse's rules: see the module docstring, ``validate_scopes`` and
    ``validate_refresh_token``."""

    def validate_scopes(self, client_id: str, scopes: list[str], client: Any, request: Any, *args: Any,
                        **kwargs: Any) -> bool:
        """Lenient on scopes that grant nothing here, strict on workspaces.

        IdPs send the scope their set-up guide names (Cloudinary's Okta app: ``openid offline provision:scim``;
        Okta's default ``offline_access``): those define nothing in Gatehouse and are dropped, and the client
        gets its workspace's scope, named in the token response (RFC 6749 §3.3). A ``scim:<id>`` of any other
        workspace is refused (``invalid_scope``).
        """
        available = get_scopes_backend().get_available_scopes(application=client, request=request)
        if not available or any(is_workspace_scope(s) and s not in available for s in scopes):
            return False
        request.scopes = list(available)
        return True

    def is_within_original_scope(self, request_scopes: list[str], refresh_token: str, request: Any, *args: Any,
                                 **kwargs: Any) -> bool:
        """A refresh naming scopes (Okta repeats its configured ones) keeps the token's own scope."""
        original = scope_to_list(self.get_original_scopes(refresh_token, request)) or []
        if any(is_workspace_scope(s) and s not in original for s in request_scopes) or not original:
            return False
        request.scopes = list(original)
        return True

    def get_original_scopes(self, refresh_token: str, request: Any, *args: Any, **kwargs: Any) -> list[str]:
        retried = getattr(request, "gatehouse_retried_scope", None)
        if retried is not None:
            return retried.split()
        return super().get_original_scopes(refresh_token, request, *args, **kwargs)

    def _retry_of_lost_reply(self, refresh_token: str, client: Any, request: Any) -> bool:
        """A refresh token used again shortly after it was rotated, when what its first use returned has not been
        used since: the client lost that reply (a timeout, a crash before saving it) and asks again.

        Answered with a fresh pair in the same family (the unused one is revoked), so a lost reply never makes the
        Owner re-authorise the IdP. Any other reuse is a replay: DOT revokes the whole family. DOT's own grace
        setting cannot serve here, as it returns the earlier tokens, which are stored only as checksums.
        """
        grace = settings.SCIM_OAUTH_REFRESH_RETRY_SECONDS
        if grace <= 0 or client is None:
            return False
        checksum = hashlib.sha256(refresh_token.encode("utf-8")).hexdigest()
        rt = (
            RefreshToken.objects.select_related("user")
            .filter(token_checksum=checksum, application=client, revoked__gt=timezone.now() - timedelta(seconds=grace))
            .order_by("-revoked").first()
        )
        if rt is None:
            return False
        successor = AccessToken.objects.filter(source_refresh_token=rt).first()
        successor_refresh = RefreshToken.objects.filter(access_token=successor).first() if successor else None
        if successor is None or successor_refresh is None or successor_refresh.revoked is not None:
            return False  # revoked on purpose, or the reply did arrive and was used: a replay
        request.gatehouse_retried_scope = successor.scope
        successor_refresh.revoke()  # the pair the client never received
        request.user = rt.user
        request.refresh_token = refresh_token
        request.refresh_token_instance = rt
        return True

    def validate_refresh_token(self, refresh_token: str, client: Any, request: Any, *args: Any, **kwargs: Any) -> bool:
        if not (
            self._retry_of_lost_reply(refresh_token, client, request)
            or super().validate_refresh_token(refresh_token, client, request, *args, **kwargs)
        ):
            return False
        credential = credential_for_application(client)
        user = getattr(request, "user", None)
        refresh = getattr(request, "refresh_token_instance", None)
        issued_at = getattr(refresh, "created", None)
        return credential is not None and approver_may_authorize(
            getattr(user, "pk", None), credential.workspace_id, issued_at
        )

    def _load_application(self, client_id: str, request: Any) -> Any:
        application = super()._load_application(client_id, request)
        if application is None:
            return None
        credential = credential_for_application(application)
        if credential is None or not credential.is_live:
            # A revoked or expired (rotated) SCIM credential's client gets no more tokens.
            request.client = None
            return None
        return application

    def validate_code(self, client_id: str, code: str, client: Any, request: Any, *args: Any, **kwargs: Any) -> bool:
        if not super().validate_code(client_id, code, client, request, *args, **kwargs):
            return False
        credential = credential_for_application(client)
        user = getattr(request, "user", None)
        return credential is not None and approver_may_authorize(getattr(user, "pk", None), credential.workspace_id)



class ScimAuthorizationView(AuthorizationView):
    """"Accept access" for a workspace's SCIM OAuth client, for that workspace's Owners only."""

    template_name = "scim/oauth_authorize.html"

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not request.user.is_authenticated:
            return super().dispatch(request, *args, **kwargs)  # LoginRequiredMixin: to /login/?next=...
        client_id = (request.POST if request.method == "POST" else request.GET).get("client_id", "")
        credential = (
            ScimCredential.objects.select_related("workspace", "oauth_application")
            .filter(kind=CredentialKind.OAUTH, key_id=client_id[:64])
            .first()
            if client_id else None
        )
        if credential is None or credential.oauth_application is None or not credential.is_live:
            # Never redirect to an unverified redirect_uri: say it here.
            return render(request, "scim/oauth_error.html", {
                "reason": "This OAuth client is unknown, revoked or expired. Create or rotate the client "
                          "on the workspace's provisioning page and enter its new client id in your identity provider.",
            }, status=400)
        if "approval_prompt" in request.GET:
            # DOT lets ?approval_prompt=auto skip the form for a returning user; an Owner always decides
            # (and every decision is audited), whatever the query string says.
            query = request.GET.copy()
            query.pop("approval_prompt")
            request.GET = query  # type: ignore[assignment]  # a mutable copy stands in for the immutable GET
        # 404 for outsiders, the "sign in to this workspace" page without a live grant, 403 for non-Owners.
        self.scim_access = access_workspace(request, credential.workspace.slug, need=Cap.SETTINGS_MANAGE)
        self.scim_credential = credential
        return super().dispatch(request, *args, **kwargs)

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        access = getattr(self, "scim_access", None)
        if access is not None:
            context.update(workspace=access.workspace, me=access.membership, can=access.caps,
                           credential=self.scim_credential)
        return context

    def form_valid(self, form: Any) -> HttpResponse:
        # The grant (authorization code) and its audit event commit together.
        with transaction.atomic():
            response = super().form_valid(form)
            location = response.get("Location", "") if response.status_code in (301, 302, 303, 307, 308) else ""
            approved = form.cleaned_data.get("allow") and "code=" in location and "error=" not in location
            credential = self.scim_credential
            record_event(
                actor=self.scim_access.actor,
                action="scim.oauth_authorized" if approved else "scim.oauth_denied",
                workspace=credential.workspace, target_type="scim_credential", target_id=credential.pk,
                target_label=credential.name,
                details={"client_id": credential.key_id, "scope": form.cleaned_data.get("scope", "")},
            )
        return response




def _token_client_id(request: HttpRequest) -> str:
    """The client id a token request claims (HTTP Basic, else the form), for rate limiting only."""
    scheme, value = authorization(request.META.get("HTTP_AUTHORIZATION", ""))
    if scheme == "basic" and value:
        # RFC 6749 section 2.3.1: the client id is form-encoded before it is put in Basic.
        client_id, _ = decode_basic(value) or ("", "")
        return unquote_plus(client_id)[:255]
    return (request.POST.get("client_id") or "")[:255]


class ScimTokenView(TokenView):
    """DOT's token endpoint, with failed requests rate limited like SCIM authentication.

    Every bad client secret costs an Argon2 verification, so repeated failures are refused before
    DOT runs: per (client IP, client id) and per client IP (``scim.ratelimit``), never per client id
    alone, which would let a stranger who knows it lock the IdP out.
    """

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        ip, client_id = client_ip(request), _token_client_id(request)
        counters = ratelimit.counters(ip, f"oauth-token:{client_id}")
        retry_after = ratelimit.limiter.retry_after(counters)
        if retry_after is not None:
            response = JsonResponse({
                "error": "temporarily_unavailable",
                "error_description": f"Too many failed token requests. Retry after {retry_after} seconds.",
            }, status=429)
            response["Retry-After"] = str(retry_after)
            response["Cache-Control"] = "no-store"
            return response
        response = super().post(request, *args, **kwargs)
        if response.status_code in (400, 401):
            ratelimit.limiter.hit(counters)
        return response
