"""Two-factor pages: the login's second step, the account's 2FA page, and the workspace's 2FA requirement.

Thin, like views.py: parse the form, call one service (``two_factor_*`` / ``workspace_set_require_2fa``),
render. Pages that show a TOTP secret or recovery codes are ``never_cache`` (``Cache-Control: no-store``...).
"""

from __future__ import annotations

from base64 import b32encode

import segno
from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.safestring import mark_safe
from django.views.decorators.cache import never_cache
from django_otp.plugins.otp_totp.models import TOTPDevice

from . import services
from .access import AuthenticatedRequest, WorkspaceRequest, mark_grants_second_factor, workspace_view
from .authn import complete_second_factor, pending_second_factor_user
from .exceptions import ServiceError
from .forms import posted_id
from .models import Membership
from .roles import Cap


class CodeForm(forms.Form):
    code = forms.CharField(
        max_length=32, label="Code",
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "autofocus": True, "inputmode": "text"}),
        help_text="The 6-digit code from your authenticator app, or a recovery code.",
    )


class RequireForm(forms.Form):
    require_2fa = forms.BooleanField(required=False, label="Require two-factor authentication for password logins")


def _enrolment(device: TOTPDevice) -> dict[str, str]:
    """What an authenticator app needs: the otpauth:// URI, its base32 secret and a local SVG QR code."""
    uri = device.config_url
    return {
        "otpauth_uri": uri,
        "secret": b32encode(device.bin_key).decode("ascii"),
        "qr_svg": mark_safe(segno.make(uri, error="m").svg_inline(scale=4, dark="#111", light="#fff")),  # noqa: S308
        "device_id": str(device.pk),
    }


def _next_url(request: HttpRequest) -> str:
    next_url = request.POST.get("next") or request.GET.get("next") or ""
    ok = url_has_allowed_host_and_scheme(next_url, allowed_hosts={request.get_host()}, require_https=request.is_secure())
    return next_url if ok else ""


@never_cache  # shows a TOTP secret and recovery codes
def login_two_factor(request: HttpRequest) -> HttpResponse:
    """Step two of a password login: a TOTP or recovery code; or, when a workspace requires 2FA and the
    person has none yet, enrolment right here (the confirming code completes the login)."""
    user = pending_second_factor_user(request)
    if user is None:
        messages.info(request, "Sign in with your email and password first.")
        return redirect("login")
    next_url = _next_url(request)
    actor = services.user_actor(user, "password")
    form = CodeForm(request.POST or None)
    enrolling = not user.two_factor_enabled
    device = services.two_factor_enrol_start(user=user) if enrolling else None
    if request.method == "POST" and form.is_valid():
        code = form.cleaned_data["code"]
        if enrolling:
            try:
                codes = services.two_factor_enrol_confirm(user=user, device_id=device.pk, token=code, actor=actor)  # type: ignore[union-attr]  # enrolling: the device exists
            except ServiceError as exc:
                form.add_error("code", exc.message)
                codes = None
            if codes:
                result = complete_second_factor(request, user, TOTPDevice.objects.get(pk=device.pk))  # type: ignore[union-attr]  # enrolling: the device exists
                return render(request, "workspaces/2fa/recovery_codes.html", {
                    "codes": codes, "continue_url": next_url or _home_url(result.granted),
                })
        else:
            verified = services.two_factor_verify(user=user, token=code, actor=actor)
            if verified is not None:
                result = complete_second_factor(request, user, verified)
                if verified.persistent_id.startswith("otp_static"):
                    messages.warning(request, "You signed in with a recovery code. It cannot be used again.")
                return redirect(next_url or _home_url(result.granted))
        if not form.errors:
            form.add_error("code", "That code is not valid. Check your authenticator app's clock and try again.")
    context = {"form": form, "next": next_url, "enrolling": enrolling, "email": user.email}
    if enrolling:
        context.update(_enrolment(device))
    return render(request, "workspaces/2fa/login.html", context)


def _home_url(granted: list) -> str:
    return reverse("workspace_home", args=[granted[0].slug]) if len(granted) == 1 else reverse("home")


@never_cache  # shows a TOTP secret and recovery codes
@login_required
def two_factor_settings(request: AuthenticatedRequest) -> HttpResponse:
    """The person's own 2FA: set up an authenticator, regenerate recovery codes, or turn it off."""
    user = request.user
    actor = services.user_actor(user, "password")
    form = CodeForm(request.POST or None)
    codes: list[str] | None = None
    if request.method == "POST" and form.is_valid():
        action = request.POST.get("action", "")
        code = form.cleaned_data["code"]
        try:
            if action == "confirm":
                device_id = posted_id(request.POST, "device")
                codes = services.two_factor_enrol_confirm(user=user, device_id=device_id, token=code, actor=actor)
                if codes:
                    mark_grants_second_factor(request)
                    messages.success(request, "Two-factor authentication is on.")
            elif action in ("disable", "regenerate"):
                # Changing the factor needs the factor: a stolen session alone cannot remove it.
                if services.two_factor_verify(user=user, token=code, actor=actor) is None:
                    form.add_error("code", "That code is not valid.")
                elif action == "disable":
                    services.two_factor_disable(user=user, actor=actor)
                    messages.success(request, "Two-factor authentication is off.")
                    return redirect("two_factor_settings")
                else:
                    codes = services.two_factor_recovery_codes_regenerate(user=user, actor=actor)
                    messages.success(request, "New recovery codes made. The old ones no longer work.")
        except ServiceError as exc:
            form.add_error("code", exc.message)
        if action == "confirm" and not codes and not form.errors:
            form.add_error("code", "That code is not valid. Check your authenticator app's clock and try again.")
    enabled = user.two_factor_enabled
    context = {"form": form if not codes else CodeForm(), "enabled": enabled, "codes": codes}
    if not enabled:
        context.update(_enrolment(services.two_factor_enrol_start(user=user)))
    else:
        context["recovery_left"] = sum(d.token_set.count() for d in user.staticdevice_set.all())  # type: ignore[attr-defined]  # django-otp's reverse relation
    return render(request, "workspaces/2fa/settings.html", context)


@workspace_view(need=Cap.SETTINGS_MANAGE)
def workspace_two_factor(request: WorkspaceRequest, slug: str) -> HttpResponse:
    """Owners require (or stop requiring) 2FA for password logins into this workspace."""
    access = request.access
    workspace = access.workspace
    form = RequireForm(request.POST or None, initial={"require_2fa": workspace.require_2fa})
    if request.method == "POST" and form.is_valid():
        try:
            services.workspace_set_require_2fa(
                workspace=workspace, required=form.cleaned_data["require_2fa"], actor=access.actor
            )
        except ServiceError as exc:
            form.add_error(None, exc.message)
        else:
            messages.success(request, "Saved.")
            return redirect("workspace_two_factor", slug)
    # Members pending consent are not counted: their accounts' 2FA status is not this workspace's to know yet.
    members = Membership.objects.filter(workspace=workspace, is_active=True, consent_pending_since__isnull=True)
    with_2fa = members.filter(user__totpdevice__confirmed=True).distinct().count()
    return render(request, "workspaces/2fa/workspace.html", {
        "workspace": workspace, "me": access.membership, "can": access.caps, "form": form,
        "with_2fa": with_2fa, "active_members": members.count(),
    })
