"""Invitations: the page a link opens (accept), and an Owner's resend and revoke. Thin: the rules are in
``services.invitations`` and ``selectors``."""

from __future__ import annotations

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import urlencode
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from . import selectors, services
from .access import WorkspaceRequest, workspace_view
from .exceptions import ServiceError
from .forms import InvitationPasswordForm
from .roles import Cap

BAD_LINK = ("This invitation link is not valid. Check that you opened the whole link from the email, or ask an Owner "
            "of the workspace to send you a new invitation.")


@never_cache
def invitation_accept(request: HttpRequest, token: str) -> HttpResponse:
    """``/invitations/<token>/``: a new account chooses its password; an existing one accepts while signed in as
    itself (through the normal login, second factor included: ``/login/?next=`` this page)."""
    invitation = selectors.invitation_by_token(token)
    if invitation is None:
        return render(request, "workspaces/invitation_unusable.html", {"reason": BAD_LINK}, status=404)
    problem = selectors.invitation_problem(invitation)
    if problem:
        return render(request, "workspaces/invitation_unusable.html", {"reason": problem}, status=410)
    workspace = invitation.workspace
    sets_password = selectors.invitation_sets_password(invitation)
    form = InvitationPasswordForm(request.POST or None) if sets_password else None
    signed_in = request.user.is_authenticated
    right_account = signed_in and request.user.pk == invitation.membership.user_id
    error = ""
    if request.method == "POST":
        try:
            if form is not None:
                if form.is_valid():
                    services.invitation_accept(invitation=invitation, user=None,
                                               password=form.cleaned_data["password"])
                    messages.success(request, f"Your password is set and you joined {workspace.name}. Sign in to open it.")
                    home = reverse("workspace_home", args=[workspace.slug])
                    return redirect(f"{reverse('login')}?{urlencode({'next': home})}")
            elif not signed_in:
                return redirect(f"{reverse('login')}?{urlencode({'next': request.path})}")
            else:
                services.invitation_accept(invitation=invitation, user=request.user)  # type: ignore[arg-type]
                messages.success(request, f"You joined {workspace.name}. Sign in to it to open it "
                                          "(your current sign-in was not made for it).")
                return redirect("home")
        except ServiceError as exc:
            if form is not None and exc.field in form.fields:
                form.add_error(exc.field, exc.message)
            else:
                error = exc.message
    return render(request, "workspaces/invitation_accept.html", {
        "invitation": invitation, "invited_workspace": workspace, "sets_password": sets_password, "form": form,
        "signed_in": signed_in, "right_account": right_account, "error": error,
        "login_url": f"{reverse('login')}?{urlencode({'next': request.path})}",
    })


@workspace_view(need=Cap.MEMBER_MANAGE)
@require_POST
def invitation_manage(request: WorkspaceRequest, slug: str, invitation_id: int) -> HttpResponse:
    """Resend or revoke one of this workspace's open invitations (Owners and Managers)."""
    invitation = selectors.invitations_open(request.access.workspace).filter(pk=invitation_id).first()
    if invitation is None:
        raise Http404("No such invitation")
    action = request.POST.get("action", "")
    try:
        if action == "resend":
            services.invitation_resend(invitation=invitation, actor=request.access.actor)
            messages.success(request, f"A new invitation went to {invitation.email}; the earlier link no longer works.")
        elif action == "revoke":
            services.invitation_revoke(invitation=invitation, actor=request.access.actor)
            messages.success(request, f"The invitation to {invitation.email} no longer works.")
        else:
            raise Http404("Unknown action")
    except ServiceError as exc:
        messages.error(request, exc.message)
    return redirect("workspace_home", slug)
