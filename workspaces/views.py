"""Web pages: thin. Parse the form, call one service, render; rights come from ``access``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django import forms as djforms
from django.contrib import messages
from django.contrib.auth import logout
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme, urlencode
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from audit.delivery import sink_statuses
from audit.selectors import latest_verification, recent_events

from . import selectors, services
from .access import AuthenticatedRequest, WorkspaceRequest, granted_workspace_ids, workspace_view
from .authn import password_login
from .confirm import unconfirmed
from .exceptions import ServiceError
from .forms import (
    AddMemberForm,
    ApiKeyForm,
    GrantForm,
    LoginForm,
    MemberSearchForm,
    RepositoryForm,
    RoleForm,
    TeamForm,
    TeamMemberForm,
    VisibilityForm,
    posted_id,
)
from .models import Membership, Team
from .ownership import idp_owned, pushed_team_memberships, team_owned
from .roles import Cap, may_manage_member


def _apply(request: WorkspaceRequest, form: djforms.Form, fn: Callable[..., Any], success: str, **kwargs: Any) -> Any:
    """Run a service; show its refusal inline on the form instead of failing the page."""
    try:
        result = fn(actor=request.access.actor, **kwargs)
    except ServiceError as exc:
        if hasattr(form, "cleaned_data"):
            form.add_error(exc.field if exc.field in form.fields else None, exc.message)
        else:  # buttons without a form of their own (deactivate, auditor...) pass an unbound form
            messages.error(request, exc.message)
        return None
    messages.success(request, success)
    return result if result is not None else True


def _ctx(request: WorkspaceRequest, **extra: Any) -> dict[str, Any]:
    access = request.access
    return {"workspace": access.workspace, "me": access.membership, "can": access.caps, **extra}


# ----------------------------------------------------------------------------- login


def login_view(request: HttpRequest) -> HttpResponse:
    next_url = request.POST.get("next") or request.GET.get("next") or ""
    if not url_has_allowed_host_and_scheme(next_url, allowed_hosts={request.get_host()}, require_https=request.is_secure()):
        next_url = ""
    form = LoginForm(request.POST or None)
    error = ""
    if request.method == "POST" and form.is_valid():
        result = password_login(request, form.cleaned_data["email"], form.cleaned_data["password"])
        if result.ok:
            return redirect(next_url or (
                reverse("workspace_home", args=[result.granted[0].slug]) if len(result.granted) == 1 else reverse("home")
            ))
        if result.second_factor:
            return redirect(reverse("login_2fa") + (f"?{urlencode({'next': next_url})}" if next_url else ""))
        error = result.message
    return render(request, "registration/login.html", {"form": form, "error": error, "next": next_url})


@require_POST
def logout_view(request: HttpRequest) -> HttpResponse:
    logout(request)
    messages.info(request, "You are signed out.")
    return redirect("login")


@login_required
def home(request: AuthenticatedRequest) -> HttpResponse:
    granted = granted_workspace_ids(request)
    rows = [
        {"membership": m, "workspace": m.workspace, "open": m.workspace_id in granted and m.is_active}
        for m in selectors.workspaces_of_user(request.user)
    ]
    return render(request, "workspaces/home.html", {"rows": rows})


# ----------------------------------------------------------------------------- workspace


HOME_MEMBERS = 10


@workspace_view()
def workspace_home(request: WorkspaceRequest, slug: str) -> HttpResponse:
    me = request.access.membership
    events = recent_events(request.access.workspace, limit=10) if request.access.can(Cap.AUDIT_VIEW) else []
    return render(request, "workspaces/workspace_home.html", _ctx(
        request,
        # The first few only: the members page searches and pages any number.
        members=selectors.members_visible_to(me)[:HOME_MEMBERS + 1], home_members=HOME_MEMBERS,
        invitations=selectors.invitations_open(request.access.workspace) if request.access.can(Cap.MEMBER_MANAGE) else [],
        now=timezone.now(),
        teams=selectors.teams_visible_to(me),
        repositories=selectors.repositories_visible_to(me),
        events=events,
        team_form=TeamForm(), repository_form=RepositoryForm(),
        deprovisioning=selectors.deprovision_counts(request.access.workspace)
        if request.access.can(Cap.SETTINGS_MANAGE) else None,
        **(_overview_status(request) if request.access.can(Cap.SETTINGS_MANAGE) else {}),
    ))


def _overview_status(request: WorkspaceRequest) -> dict[str, Any]:
    """The Owner's status at a glance (SSO and provisioning come from their apps' template tags)."""
    workspace = request.access.workspace
    sinks = sink_statuses(workspace)
    return {
        "member_counts": selectors.member_counts(workspace),
        "verification": latest_verification(workspace),
        "sinks": sinks,
        "sinks_behind": [s for s in sinks if s.state in ("behind", "failing")],
    }


@workspace_view()
def member_list(request: WorkspaceRequest, slug: str) -> HttpResponse:
    """Members at any size: search, filters and keyset pages of 50 (the rows the viewer may see)."""
    form = MemberSearchForm(request.GET)
    filters = form.cleaned_data if form.is_valid() else {}
    active = {k: v for k, v in filters.items() if v}
    after = request.GET.get("after", "")
    page = selectors.members_page(
        request.access.membership, active, after=int(after) if after.isascii() and after.isdigit() and len(after) < 19 else None,
    )
    query = urlencode(active)
    return render(request, "workspaces/member_list.html", _ctx(
        request, form=form, members=page.members, filtered=bool(active), query=query, paged=bool(after),
        next_url=f"?{urlencode({**active, 'after': page.next_after})}" if page.next_after else "",
        # Workspace-wide figures only for those who see every member (a count would reveal private members).
        counts=selectors.member_counts(request.access.workspace) if request.access.can(Cap.MEMBERS_VIEW_PRIVATE) else None,
    ))


@workspace_view()
def team_list(request: WorkspaceRequest, slug: str) -> HttpResponse:
    """The teams the viewer may see, with their member counts; Managers and Owners create teams here."""
    return render(request, "workspaces/teams.html", _ctx(request, teams=selectors.teams_visible_to(request.access.membership)))


@workspace_view()
def repository_list(request: WorkspaceRequest, slug: str) -> HttpResponse:
    """The repositories the viewer may see, each with the grants it may see."""
    return render(request, "workspaces/repositories.html", _ctx(
        request, repositories=selectors.repositories_visible_to(request.access.membership),
    ))


@workspace_view(need=Cap.MEMBER_MANAGE)
def member_add(request: WorkspaceRequest, slug: str) -> HttpResponse:
    form = AddMemberForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        membership = _apply(request, form, services.membership_add, "Member added.",
                            workspace=request.access.workspace, invite=True, **form.cleaned_data)
        if membership:
            if membership.consent_pending:
                messages.info(request, f"{membership.email} already has a Gatehouse account: an invitation went to that "
                                       "address, and they join when they accept it.")
            elif membership.invitations.exists():
                messages.info(request, f"An invitation to choose a password went to {membership.email}.")
            return redirect("member_detail", slug, membership.pk)
    return render(request, "workspaces/member_add.html", _ctx(request, form=form))


def _member_or_404(request: WorkspaceRequest, member_id: int) -> Membership:
    member = selectors.member_for_viewer(request.access.membership, member_id)
    if member is None:
        raise Http404("No such member")
    return member


@workspace_view()
def member_detail(request: WorkspaceRequest, slug: str, member_id: int) -> HttpResponse:
    member = _member_or_404(request, member_id)
    me = request.access.membership
    role_form = RoleForm(initial={"role": member.role})
    visibility_form = VisibilityForm(initial={"visibility": member.visibility})
    if request.method == "POST":
        action = request.POST.get("action", "")
        ok = None
        if action == "role":
            role_form = RoleForm(request.POST)
            if role_form.is_valid():
                ok = _apply(request, role_form, services.membership_change_role, "Role changed.",
                            membership=member, role=role_form.cleaned_data["role"])
        elif action == "visibility":
            visibility_form = VisibilityForm(request.POST)
            if visibility_form.is_valid():
                ok = _apply(request, visibility_form, services.membership_set_visibility, "Visibility changed.",
                            membership=member, visibility=visibility_form.cleaned_data["visibility"])
        elif action in ("deactivate", "reactivate"):
            if action == "deactivate" and (ask := unconfirmed(
                request, title=f"Deactivate {member.email}?", confirm_label="Deactivate",
                cancel_url=reverse("member_detail", args=[slug, member.pk]),
                consequences=[
                    "Their next request to this workspace is refused, and every session, API key and token of theirs"
                    " here is revoked.",
                    "Their membership, teams and history stay; an admin can reactivate them (revoked keys stay revoked).",
                ],
            )):
                return ask
            fn = services.membership_deactivate if action == "deactivate" else services.membership_reactivate
            ok = _apply(request, role_form, fn, f"Member {action}d.", membership=member)
        elif action == "remove":
            if ask := unconfirmed(
                request, title=f"Remove {member.email} from {request.access.workspace.name}?", confirm_label="Remove member",
                cancel_url=reverse("member_detail", args=[slug, member.pk]),
                consequences=[
                    "The membership, its role and its team memberships are deleted, and its sessions, API keys and"
                    " tokens in this workspace are revoked.",
                    "Their account stays (they may belong to other workspaces); the audit log keeps their history.",
                    "If your identity provider still assigns them, its next push adds them back: unassign them there.",
                ],
            ):
                return ask
            if _apply(request, role_form, services.membership_remove, f"{member.email} removed.", membership=member):
                return redirect("member_list", slug)
        elif action == "detach":
            if ask := unconfirmed(
                request, title=f"Detach {member.email} from the identity provider?", confirm_label="Detach",
                cancel_url=reverse("member_detail", args=[slug, member.pk]),
                consequences=[
                    "The portal then owns their name, email, role, active state and teams.",
                    "The identity provider's further changes to them are not applied (it can still deactivate them).",
                ],
            ):
                return ask
            ok = _apply(request, role_form, services.membership_detach,
                        "Detached from the identity provider: the portal now owns this member's fields.",
                        membership=member)
        elif action in ("auditor_on", "auditor_off"):
            ok = _apply(request, role_form, services.membership_set_auditor, "Auditor permission changed.",
                        membership=member, is_auditor=action == "auditor_on")
        else:
            raise Http404("Unknown action")
        if ok:
            return redirect("member_detail", slug, member.pk)
        member.refresh_from_db()
    events: Any = []
    if request.access.can(Cap.AUDIT_VIEW):
        events = recent_events(request.access.workspace, limit=10, target=("member", member.pk))
    return render(request, "workspaces/member_detail.html", _ctx(
        request, member=member, role_form=role_form, visibility_form=visibility_form,
        may_manage=may_manage_member(me, member),
        role_owned=idp_owned(member, "role"),
        reactivate_owned=idp_owned(member, "reactivate"), email_owned=idp_owned(member, "email"),
        teams=selectors.teams_visible_to(me).filter(team_memberships__membership=member),
        events=events,
    ))


# ----------------------------------------------------------------------------- teams


@workspace_view(need=Cap.TEAM_MANAGE)
@require_POST
def team_create(request: WorkspaceRequest, slug: str) -> HttpResponse:
    form = TeamForm(request.POST)
    if form.is_valid():
        team = _apply(request, form, services.team_create, "Team created.",
                      workspace=request.access.workspace, name=form.cleaned_data["name"])
        if team:
            return redirect("team_detail", slug, team.pk)
    for error in form.errors.values():
        messages.error(request, " ".join(error))  # type: ignore[arg-type]  # ErrorList yields str messages
    return redirect("workspace_home", slug)


def _team_or_404(request: WorkspaceRequest, team_id: int) -> Team:
    team = selectors.team_for_viewer(request.access.membership, team_id)
    if team is None:
        raise Http404("No such team")
    return team


def _with_pushed_reason(team: Team, members: Any) -> list[Membership]:
    """The team's members, each with ``pushed_reason``: why the portal may not remove it ("" when it may)."""
    pushed = pushed_team_memberships(team.pk)
    out = list(members)
    for member in out:
        member.pushed_reason = pushed.get(member.pk, "")
    return out


@workspace_view()
def team_detail(request: WorkspaceRequest, slug: str, team_id: int) -> HttpResponse:
    team = _team_or_404(request, team_id)
    me = request.access.membership
    candidates = selectors.members_visible_to(me).filter(is_active=True).exclude(team_memberships__team=team)
    add_form = TeamMemberForm(members=candidates)
    rename_form = TeamForm(initial={"name": team.name})
    if request.method == "POST":
        if not request.access.can(Cap.TEAM_MANAGE):
            raise Http404("No such action")
        action = request.POST.get("action", "")
        ok = None
        if action == "add":
            add_form = TeamMemberForm(request.POST, members=candidates)
            if add_form.is_valid():
                member = _member_or_404(request, int(add_form.cleaned_data["member"]))
                ok = _apply(request, add_form, services.team_add_member, "Member added to the team.",
                            team=team, membership=member)
        elif action == "remove":
            member = _member_or_404(request, posted_id(request.POST, "member"))
            ok = _apply(request, add_form, services.team_remove_member, "Member removed from the team.",
                        team=team, membership=member)
        elif action == "rename":
            rename_form = TeamForm(request.POST)
            if rename_form.is_valid():
                ok = _apply(request, rename_form, services.team_rename, "Team renamed.",
                            team=team, name=rename_form.cleaned_data["name"])
        elif action == "delete":
            if ask := unconfirmed(
                request, title=f"Delete the team {team.name}?", confirm_label="Delete team",
                cancel_url=reverse("team_detail", args=[slug, team.pk]),
                consequences=[
                    "Its members lose the repository access granted through it at once.",
                    "Group sync mappings and SCIM groups that point at it stop applying; the audit log keeps its history.",
                ],
            ):
                return ask
            if _apply(request, add_form, services.team_delete, f"Team {team.name} deleted.", team=team):
                return redirect("workspace_home", slug)
        else:
            raise Http404("Unknown action")
        if ok:
            return redirect("team_detail", slug, team.pk)
    return render(request, "workspaces/team_detail.html", _ctx(
        request, team=team, members=_with_pushed_reason(team, selectors.team_members(team, me)), add_form=add_form,
        rename_form=rename_form, team_owned=team_owned(team),
    ))


# ----------------------------------------------------------------------------- repositories


@workspace_view(need=Cap.REPOSITORY_MANAGE)
@require_POST
def repository_create(request: WorkspaceRequest, slug: str) -> HttpResponse:
    form = RepositoryForm(request.POST)
    if form.is_valid():
        repo = _apply(request, form, services.repository_create, "Repository created.",
                      workspace=request.access.workspace, **form.cleaned_data)
        if repo:
            return redirect("repository_detail", slug, repo.pk)
    for error in form.errors.values():
        messages.error(request, " ".join(error))  # type: ignore[arg-type]  # ErrorList yields str messages
    return redirect("workspace_home", slug)


@workspace_view()
def repository_detail(request: WorkspaceRequest, slug: str, repo_id: int) -> HttpResponse:
    me = request.access.membership
    repo = selectors.repositories_visible_to(me).filter(pk=repo_id).first()
    if repo is None:
        raise Http404("No such repository")
    teams = selectors.teams_visible_to(me)
    members = selectors.members_visible_to(me).filter(is_active=True)
    form = GrantForm(teams=teams, members=members)
    if request.method == "POST":
        if not request.access.can(Cap.REPOSITORY_MANAGE):
            raise Http404("No such action")
        ok = None
        if request.POST.get("action") == "revoke":
            grant = repo.grants.filter(pk=posted_id(request.POST, "grant")).first()
            if grant is None:
                raise Http404("No such grant")
            ok = _apply(request, form, services.repository_revoke_grant, "Grant removed.", grant=grant)
        else:
            form = GrantForm(request.POST, teams=teams, members=members)
            if form.is_valid():
                kind, _, pk = form.cleaned_data["grantee"].partition(":")
                grantee: dict[str, Any] = {"team": teams.filter(pk=pk).first()} if kind == "team" else {"membership": members.filter(pk=pk).first()}
                ok = _apply(request, form, services.repository_grant, "Grant saved.",
                            repository=repo, permission=form.cleaned_data["permission"], **grantee)
        if ok:
            return redirect("repository_detail", slug, repo.pk)
    return render(request, "workspaces/repository_detail.html", _ctx(request, repository=repo, form=form))


# ----------------------------------------------------------------------------- API keys


@never_cache  # the page may carry a secret shown once
@workspace_view(need=Cap.APIKEY_OWN)
def api_keys(request: WorkspaceRequest, slug: str) -> HttpResponse:
    me = request.access.membership
    form = ApiKeyForm(request.POST or None)
    if not request.access.can(Cap.APIKEY_SERVICE):
        del form.fields["scopes"]  # only service keys take scopes
    new_key = ""
    if request.method == "POST":
        if request.POST.get("action") == "revoke":
            key = selectors.api_keys_for(me).filter(pk=posted_id(request.POST, "key")).first()
            if key is None:
                raise Http404("No such key")
            if ask := unconfirmed(
                request, title=f"Revoke the API key {key.name}?", confirm_label="Revoke key",
                cancel_url=reverse("api_keys", args=[slug]),
                consequences=["Every script or tool using it is refused from its next request.",
                              "A revoked key cannot be restored: create a new one if it is needed again."],
            ):
                return ask
            _apply(request, form, services.api_key_revoke, f"Key {key.name} revoked.", api_key=key)
            return redirect("api_keys", slug)
        if form.is_valid():
            service_key = request.POST.get("kind") == "service" and request.access.can(Cap.APIKEY_SERVICE)
            created = _apply(request, form, services.api_key_create, "Key created. Copy it now: it will not be shown again.",
                             workspace=request.access.workspace, name=form.cleaned_data["name"],
                             membership=None if service_key else me,
                             scopes=form.cleaned_data.get("scopes", []) if service_key else [])
            if created:
                new_key = created[1]
                form = ApiKeyForm()
    return render(request, "workspaces/api_keys.html", _ctx(
        request, form=form, keys=selectors.api_key_rows_for(me, timezone.now()), new_key=new_key,
    ))


# ----------------------------------------------------------------------------- deprovisioning


@workspace_view(need=Cap.SETTINGS_MANAGE)
def deprovisioning(request: WorkspaceRequest, slug: str) -> HttpResponse:
    """Owners see credential revocations that are pending, running or failed (never silently dropped)."""
    workspace = request.access.workspace
    return render(request, "workspaces/deprovisioning.html", _ctx(
        request,
        counts=selectors.deprovision_counts(workspace),
        open_jobs=selectors.deprovision_jobs_open(workspace),
        done_jobs=selectors.deprovision_jobs_recent_done(workspace),
    ))
