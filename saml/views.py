"""SAML pages and endpoints. Thin: parse, call one service, render. Rights come from ``workspaces.access``."""

from __future__ import annotations

from datetime import UTC
from typing import Any

from django.contrib import messages
from django.contrib.auth import authenticate
from django.contrib.auth import login as django_login
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import urlencode
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods, require_POST

from audit.middleware import client_ip
from workspaces.access import GrantMethod, WorkspaceRequest, grant_workspace, workspace_view
from workspaces.confirm import unconfirmed
from workspaces.exceptions import ServiceError
from workspaces.forms import LoginForm, posted_id
from workspaces.models import Team, User, Workspace
from workspaces.roles import Cap
from workspaces.selectors import domain_claims_of

from . import selectors, services, sp_keys, test_result
from .acs import AcsFailure
from .forms import BreakGlassForm, GroupMappingForm, SsoSettingsForm
from .metadata import cert_info
from .models import AuthnRequestPurpose, SamlSettings, SpKeyState
from .sp import acs_url, login_url, sp_entity_id, sp_metadata_xml

AUTH_BACKEND = "workspaces.auth_backends.EmailBackend"


def _ctx(request: WorkspaceRequest, **extra: Any) -> dict[str, Any]:
    access = request.access
    return {"workspace": access.workspace, "me": access.membership, "can": access.caps, **extra}


def _sp_key_rows(cfg: SamlSettings | None) -> list[dict[str, Any]]:
    """The SP keys the settings page shows: certificates and fingerprints only, never the private key."""
    return [{"state": k.state, "label": SpKeyState(k.state).label, "cert_pem": k.cert_pem,
             "fingerprint_sha256": k.fingerprint_sha256, "sha1": sp_keys.sha1_fingerprint(k.cert_pem),
             "not_valid_after": k.not_valid_after, "created_at": k.created_at}
            for k in selectors.sp_keys_for(cfg)]


def _sp_info(slug: str) -> dict[str, str]:
    return {"sp_entity_id": sp_entity_id(slug), "acs_url": acs_url(slug), "login_url": login_url(slug),
            "metadata_url": reverse("saml_metadata", args=[slug])}


# ----------------------------------------------------------------------------- settings pages (Owners)


@never_cache  # the page may show break-glass codes once
@workspace_view(need=Cap.SETTINGS_MANAGE)
def sso_settings(request: WorkspaceRequest, slug: str) -> HttpResponse:
    workspace = request.access.workspace
    actor = request.access.actor
    cfg = selectors.saml_settings_for(workspace)
    initial = {}
    if cfg:
        initial = {
            "metadata_url": cfg.metadata_url, "email_attribute": cfg.email_attribute,
            "first_name_attribute": cfg.first_name_attribute, "last_name_attribute": cfg.last_name_attribute,
            "groups_attribute": cfg.groups_attribute, "role_attribute": cfg.role_attribute,
            "subject_attribute": cfg.subject_attribute,
            "idp_initiated": cfg.idp_initiated,
            "clock_skew_seconds": cfg.clock_skew_seconds,
        }
    form = SsoSettingsForm(initial=initial)
    codes: list[str] = []
    preview: services.MetadataPreview | None = None
    if request.method == "POST":
        action = request.POST.get("action", "save")
        try:
            if action == "save":
                form = SsoSettingsForm(request.POST)
                if form.is_valid():
                    data = form.cleaned_data
                    saved = services.saml_settings_save(
                        workspace=workspace, actor=actor, metadata_xml=data["metadata_xml"],
                        metadata_url=data["metadata_url"],
                        email_attribute=data["email_attribute"], first_name_attribute=data["first_name_attribute"],
                        last_name_attribute=data["last_name_attribute"], groups_attribute=data["groups_attribute"],
                        role_attribute=data["role_attribute"], subject_attribute=data["subject_attribute"],
                        idp_initiated=data["idp_initiated"], clock_skew_seconds=data["clock_skew_seconds"],
                    )
                    if saved.pending_idp:
                        messages.warning(request, "SAML-only is enforced, so the new identity provider is staged: "
                                                  "the current one keeps working until a Test SSO with the new one "
                                                  "succeeds, which makes it live.")
                    else:
                        messages.success(request, "SSO settings saved. Run Test SSO to check them.")
                    return redirect("sso_settings", slug)
            elif action == "preview":
                # Step 2 of the guided set-up: show what the metadata says before anything is saved.
                form = SsoSettingsForm(request.POST)
                if form.is_valid():
                    preview = services.saml_metadata_preview(
                        workspace=workspace, metadata_xml=form.cleaned_data["metadata_xml"],
                        metadata_url=form.cleaned_data["metadata_url"],
                    )
            elif action == "test":
                if cfg is None:
                    raise ServiceError("Save the IdP metadata first.")
                return redirect(services.authn_request_issue(
                    workspace=workspace, cfg=cfg, purpose=AuthnRequestPurpose.TEST, user=request.user,
                ))
            elif action == "enforce_on":
                step = _enforce_step(request, workspace)
                if step is not None:
                    return step
                services.saml_only_set(workspace=workspace, actor=actor, enabled=True,
                                       prepared=request.POST.get("prepared", ""))
                messages.success(request, "SAML-only is now enforced. Password sign-in is refused for this workspace; "
                                          "keep the recovery codes you stored for break-glass.")
                return redirect("sso_settings", slug)
            elif action == "enforce_off":
                if ask := unconfirmed(
                    request, title=f"Stop enforcing SAML-only in {workspace.name}?", confirm_label="Stop enforcing",
                    cancel_url=reverse("sso_settings", args=[slug]),
                    consequences=["Members may sign in with a password again (where they have one), besides SSO.",
                                  "The unused break-glass recovery codes stop working."],
                ):
                    return ask
                services.saml_only_set(workspace=workspace, actor=actor, enabled=False)
                workspace.refresh_from_db()
                messages.success(request, "SAML-only is off: members may sign in with a password again; the unused "
                                          "recovery codes no longer work.")
            elif action == "discard_pending":
                services.saml_pending_discard(workspace=workspace, actor=actor)
                messages.success(request, "The staged IdP change is discarded; the live IdP is unchanged.")
            elif action == "sp_key_prepare":
                key = services.sp_key_prepare(workspace=workspace, actor=actor)
                messages.success(request, "SP key created and active: give its certificate to your IdP." if
                                 key.state == SpKeyState.ACTIVE else
                                 "Next SP key prepared and published in the SP metadata. Give its certificate to your "
                                 "IdP, then activate it.")
                return redirect("sso_settings", slug)
            elif action == "sp_key_activate":
                services.sp_key_activate(workspace=workspace, actor=actor)
                messages.success(request, "The new SP key is active and signs requests; the previous key still "
                                          "decrypts until you retire it.")
                return redirect("sso_settings", slug)
            elif action == "sp_key_retire":
                services.sp_key_retire(workspace=workspace, actor=actor)
                messages.success(request, "The previous SP key is retired: assertions encrypted to it are refused.")
                return redirect("sso_settings", slug)
            elif action == "sp_options":
                services.sp_options_set(
                    workspace=workspace, actor=actor,
                    sign_authn_requests=request.POST.get("sign_authn_requests") == "on",
                    require_encrypted_assertions=request.POST.get("require_encrypted_assertions") == "on",
                )
                messages.success(request, "Request signing and assertion encryption settings saved.")
                return redirect("sso_settings", slug)
            elif action == "regenerate_codes":
                codes = services.break_glass_codes_regenerate(workspace=workspace, actor=actor)
                messages.success(request, "New recovery codes issued; the old unused ones no longer work.")
            else:
                raise Http404("Unknown action")
        except ServiceError as exc:
            if action in ("save", "preview"):
                form.add_error(exc.field if exc.field in form.fields else None, exc.message)
            else:
                messages.error(request, exc.message)
    cfg = selectors.saml_settings_for(workspace)
    certs = [cert_info(c) for c in cfg.certificates] if cfg else []
    keys = _sp_key_rows(cfg)
    return render(request, "saml/settings.html", _ctx(
        request, form=form, cfg=cfg, certs=certs, sp=_sp_info(slug), codes=codes, preview=preview,
        preview_certs=[cert_info(c) for c in preview.parsed.certificates] if preview else [],
        test_fresh=selectors.test_is_fresh(cfg), last_test=cfg.last_test_result if cfg else {},
        pending=services.pending_summary(cfg), sp_keys=keys, sp_key_next=any(k["state"] == SpKeyState.NEXT for k in keys),
        codes_left=selectors.break_glass_codes_left(workspace),
        domains=list(domain_claims_of(workspace)),
    ))


def _enforce_step(request: WorkspaceRequest, workspace: Workspace) -> HttpResponse | None:
    """Enforcing SAML-only is a step of its own: what happens and to whom, the recovery codes with copy and
    download, and an "I have stored them" box. None once the Owner has confirmed with the codes in hand."""
    prepared = request.POST.get("prepared", "")
    if prepared and request.POST.get("stored") == "on":
        return None
    if not selectors.test_is_fresh(selectors.saml_settings_for(workspace)):
        raise ServiceError("Run Test SSO successfully first (within the last 24 hours), then enforce SAML-only.")
    error = ""
    if prepared:
        codes = services.break_glass_codes_prepared(workspace=workspace, token=prepared)
        error = "Tick the box once you have stored the recovery codes: they are the only way in if SSO fails."
    else:
        codes, prepared = services.break_glass_codes_prepare(workspace=workspace)
    without_sso, sample = selectors.members_without_sso_sign_in(workspace)
    return render(request, "saml/enforce_confirm.html", _ctx(
        request, codes=codes, prepared=prepared, error=error, without_sso=without_sso, without_sso_sample=sample,
        my_method=request.access.method, sp=_sp_info(workspace.slug),
    ), status=400 if error else 200)


@never_cache
@workspace_view(need=Cap.SETTINGS_MANAGE)
def sso_test_result(request: WorkspaceRequest, slug: str) -> HttpResponse:
    """The admin's Test SSO result: success with what the IdP sent and what a login would do, or the exact reason
    it failed and what to check. Reached from the ACS; also by hand, to see the last successful test."""
    workspace = request.access.workspace
    cfg = selectors.saml_settings_for(workspace)
    failure = test_result.last_failure(workspace, request.user.pk, cfg.last_test_succeeded_at if cfg else None)
    return render(request, "saml/test_result.html", _ctx(
        request, cfg=cfg, outcome=failure, last_test=cfg.last_test_result if cfg else {},
        test_fresh=selectors.test_is_fresh(cfg), sp=_sp_info(slug),
    ))


@workspace_view(need=Cap.SETTINGS_MANAGE)
def group_sync(request: WorkspaceRequest, slug: str) -> HttpResponse:
    workspace = request.access.workspace
    actor = request.access.actor
    teams = Team.objects.filter(workspace=workspace).order_by("name")
    form = GroupMappingForm(teams=teams)
    if request.method == "POST":
        action = request.POST.get("action", "")
        try:
            if action == "add":
                form = GroupMappingForm(request.POST, teams=teams)
                if form.is_valid():
                    data = form.cleaned_data
                    team = teams.filter(pk=data["team"]).first() if data["team"] else None
                    services.group_mapping_create(
                        workspace=workspace, actor=actor, idp_group=data["idp_group"], team=team,
                        new_team_name=data["new_team_name"], role=data["role"], priority=data["priority"],
                    )
                    messages.success(request, "Mapping added.")
                    return redirect("group_sync", slug)
            elif action == "delete":
                mapping = selectors.group_mappings_for(workspace).filter(pk=posted_id(request.POST, "mapping")).first()
                if mapping is None:
                    raise Http404("No such mapping")
                services.group_mapping_delete(mapping=mapping, actor=actor)
                messages.success(request, "Mapping removed.")
                return redirect("group_sync", slug)
            elif action in ("enable", "disable"):
                services.group_sync_set(workspace=workspace, actor=actor, enabled=action == "enable")
                messages.success(request, f"Group sync {action}d.")
                return redirect("group_sync", slug)
            else:
                raise Http404("Unknown action")
        except ServiceError as exc:
            form.add_error(exc.field if exc.field in form.fields else None, exc.message)
    cfg = selectors.saml_settings_for(workspace)
    return render(request, "saml/group_sync.html", _ctx(
        request, form=form, cfg=cfg, mappings=selectors.group_mappings_for(workspace),
        preview=selectors.group_sync_preview(workspace),
    ))


# ----------------------------------------------------------------------------- protocol endpoints


def _error(request: HttpRequest, reason: str, workspace: Workspace, status: int = 403) -> HttpResponse:
    return render(request, "saml/error.html", {
        "reason": reason, "support_reference": getattr(request, "request_id", ""), "sso_workspace": workspace,
    }, status=status)


def _workspace_with_sso(slug: str) -> tuple[Workspace, SamlSettings]:
    workspace, cfg = selectors.saml_settings_by_slug(slug)
    if workspace is None or cfg is None:
        raise Http404("No single sign-on for this workspace")
    return workspace, cfg


def _log_in(request: HttpRequest, user: User, workspace: Workspace, method: str,
            expires_at: float | None = None) -> None:
    """Log ``user`` in and grant this one workspace; another person's session is flushed first."""
    if request.user.is_authenticated and request.user.pk != user.pk:
        request.session.flush()  # another person's session: start clean, keep none of their grants
    django_login(request, user, backend=AUTH_BACKEND)
    grant_workspace(request, workspace, method, expires_at=expires_at)


@never_cache
def login(request: HttpRequest, slug: str) -> HttpResponse:
    """SP-initiated login: remember the AuthnRequest and the page wanted (local paths only), go to the IdP."""
    workspace, cfg = _workspace_with_sso(slug)
    try:
        target = services.authn_request_issue(
            workspace=workspace, cfg=cfg, next_url=request.GET.get("next", ""), purpose=AuthnRequestPurpose.LOGIN,
        )
    except ServiceError as exc:
        return _error(request, exc.message, workspace=workspace, status=503)
    return redirect(target)


@csrf_exempt  # the IdP's auto-submitted form cannot carry our CSRF token; the signed response is the proof
@require_POST
@never_cache
def acs(request: HttpRequest, slug: str) -> HttpResponse:
    workspace, cfg = _workspace_with_sso(slug)
    saml_response = request.POST.get("SAMLResponse", "")
    email = ""
    try:
        verified, by_staged_idp = services.verify_login_response(workspace=workspace, cfg=cfg,
                                                                 saml_response=saml_response)
        email = verified.email
        if verified.authn_request is not None and verified.authn_request.purpose == AuthnRequestPurpose.TEST:
            services.sso_test_complete(workspace=workspace, cfg=cfg, login=verified, pending=by_staged_idp)
            # The session's grants are not touched: Test SSO changes no rights. The result page shows what happened.
            test_result.forget_failure(workspace, verified.authn_request.user_id or 0)
            return redirect("sso_test_result", slug)
        outcome = services.sso_login_complete(
            workspace=workspace, cfg=cfg, login=verified, relay_state=request.POST.get("RelayState", ""),
        )
    except AcsFailure as failure:
        services.sso_login_failed_record(workspace=workspace, failure=failure, email=email)
        starter = test_result.test_starter(workspace, saml_response)
        if starter is not None:
            # A refused Test SSO: back to the admin's result page with the reason, not the end-user error page.
            test_result.remember_failure(workspace, starter, failure)
            return redirect("sso_test_result", slug)
        return _error(request, failure.public_reason, workspace=workspace)
    if outcome.consent_pending:
        # No grant: the membership opens nothing until the person accepts the invitation sent to the account.
        return render(request, "saml/consent_pending.html", {
            "sso_workspace": workspace, "invited_email": outcome.membership.user.email,
        }, status=403)
    expires = verified.session_not_on_or_after
    _log_in(request, outcome.membership.user, workspace, GrantMethod.SAML,
            expires_at=expires.astimezone(UTC).timestamp() if expires else None)
    return redirect(outcome.next_url or reverse("workspace_home", args=[slug]))


def metadata(request: HttpRequest, slug: str) -> HttpResponse:
    # SP metadata is public and needed before the IdP is set up (Okta asks for it first).
    workspace, cfg = selectors.saml_settings_by_slug(slug)
    if not workspace:
        raise Http404("No such workspace")
    xml = sp_metadata_xml(slug, cfg, selectors.sp_keys_for(cfg))
    response = HttpResponse(xml, content_type="application/samlmetadata+xml")
    response["Content-Disposition"] = f'inline; filename="gatehouse-{slug}-sp-metadata.xml"'
    return response


@require_POST
def discover(request: HttpRequest) -> HttpResponse:
    """The /login/ page's "Log in with SSO": find the workspace by email domain and go to its IdP."""
    form = LoginForm(request.POST)
    email = request.POST.get("email", "").strip()
    next_url = services.safe_next(request.POST.get("next", ""))
    workspace = selectors.sso_workspace_for_email(email) if "@" in email else None
    if workspace is None:
        return render(request, "registration/login.html", {
            "form": form, "next": next_url,
            "error": "No single sign-on is set up for that email domain. Sign in with your password, "
                     "or use the SSO link your workspace admin gave you.",
        })
    target = reverse("saml_login", args=[workspace.slug])
    return redirect(f"{target}?{urlencode({'next': next_url})}" if next_url else target)


@require_http_methods(["GET", "POST"])
@never_cache
def break_glass(request: HttpRequest, slug: str) -> HttpResponse:
    """An Owner's way in while SAML-only is enforced and the IdP is down: password + one-time code."""
    workspace, _cfg = selectors.saml_settings_by_slug(slug)
    if workspace is None or not workspace.saml_only:
        raise Http404("No break-glass for this workspace")
    form = BreakGlassForm(request.POST or None)
    error = ""
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        ip = client_ip(request)
        retry_after = services.break_glass_retry_after(workspace=workspace, ip=ip)
        if retry_after is not None:
            services.break_glass_failed_record(workspace=workspace, email=data["email"], ip=ip, throttled=True,
                                               reason="throttled: too many failed attempts from this address")
            minutes = max(1, -(-retry_after // 60))
            error = (f"Too many failed attempts from your network. Wait {minutes} minutes and try again; "
                     "another Owner can also generate new recovery codes.")
            return render(request, "saml/break_glass.html",
                          {"form": form, "error": error, "sso_workspace": workspace}, status=429)
        user = authenticate(request, email=data["email"], password=data["password"])
        try:
            if user is None:
                raise ServiceError("bad email or password")
            services.break_glass_use(workspace=workspace, user=user, code=data["code"])
        except ServiceError as exc:
            services.break_glass_failed_record(workspace=workspace, email=data["email"], reason=exc.message, ip=ip)
            error = "Those details do not open this workspace. Recovery codes work once, for Owners only."
        else:
            _log_in(request, user, workspace, GrantMethod.BREAK_GLASS)
            messages.warning(request, "You used a break-glass recovery code. Every Owner can see this on the workspace home.")
            return redirect("workspace_home", slug)
    return render(request, "saml/break_glass.html", {"form": form, "error": error, "sso_workspace": workspace})
