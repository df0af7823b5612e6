"""Access reviews in the portal (Owners, and members with the auditor permission): start a review, mark each grant
keep or revoke, complete it (revocations applied with your own rights), export the evidence. docs/access-reviews.md.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import urlencode
from django.views.decorators.http import require_GET, require_http_methods

from . import review_export, selectors, services
from .access import WorkspaceRequest, workspace_view
from .confirm import unconfirmed
from .exceptions import ServiceError
from .forms import posted_id
from .models import AccessReview, Repository, ReviewDecision, ReviewScope, Team
from .roles import Cap


class ReviewStartForm(forms.Form):
    """Start a review: its name and what it covers."""

    name = forms.CharField(max_length=200, help_text="For example \"Q3 2025 production access\": it names the export.")
    scope_kind = forms.ChoiceField(
        label="Review", choices=ReviewScope.choices, initial=ReviewScope.WORKSPACE, widget=forms.RadioSelect,
        help_text="The whole workspace lists every role, team membership and repository permission.",
    )
    team = forms.ModelChoiceField(queryset=Team.objects.none(), required=False, empty_label="(choose a team)")
    repository = forms.ModelChoiceField(
        queryset=Repository.objects.none(), required=False, empty_label="(choose a repository)",
    )

    def __init__(self, *args: Any, teams: Any, repositories: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["team"].queryset = teams  # type: ignore[attr-defined]
        self.fields["repository"].queryset = repositories  # type: ignore[attr-defined]

    def scope_id(self) -> int | None:
        kind = self.cleaned_data["scope_kind"]
        chosen = self.cleaned_data.get(kind) if kind != ReviewScope.WORKSPACE else None
        return chosen.pk if chosen is not None else None


def _ctx(request: WorkspaceRequest, **extra: Any) -> dict[str, Any]:
    access = request.access
    return {"workspace": access.workspace, "me": access.membership, "can": access.caps, **extra}


def _n(review: AccessReview, name: str) -> int:
    """One of the counts ``selectors.access_reviews_of`` annotates (``revoke``, ``undecided``, ``refused``...)."""
    return int(getattr(review, f"{name}_count", 0))


def _review_or_404(request: WorkspaceRequest, review_id: int) -> AccessReview:
    # Scoped to the URL's workspace: another workspace's review id is "not found", like a missing one.
    review = selectors.access_review_for(request.access.workspace, review_id)
    if review is None:
        raise Http404("No such access review")
    return review


@require_http_methods(["GET", "POST"])
@workspace_view(need=Cap.REVIEW_MANAGE)
def review_list(request: WorkspaceRequest, slug: str) -> HttpResponse:
    workspace = request.access.workspace
    teams, repositories = selectors.access_review_scope_choices(workspace)
    form = ReviewStartForm(request.POST or None, teams=teams, repositories=repositories)
    if request.method == "POST" and form.is_valid():
        try:
            review = services.access_review_start(
                workspace=workspace, actor=request.access.actor, name=form.cleaned_data["name"],
                scope_kind=form.cleaned_data["scope_kind"], scope_id=form.scope_id(),
            )
        except ServiceError as exc:
            field = {"scope_id": form.cleaned_data["scope_kind"]}.get(exc.field or "", exc.field)
            form.add_error(field if field in form.fields else None, exc.message)
        else:
            count = review.items.count()
            if count:
                messages.success(request, f"Review started with {count} grant{'s' if count != 1 else ''} as they are "
                                          "now. Mark each keep or revoke, then complete the review.")
            else:
                messages.success(request, "Review started: nothing is granted in this scope, so there is nothing to "
                                          "decide. Complete it to record that.")
            return redirect("review_detail", slug, review.pk)
    return render(request, "workspaces/reviews/list.html", _ctx(
        request, form=form, reviews=selectors.access_reviews_of(workspace),
    ))


def _posted_decisions(request: WorkspaceRequest, review: AccessReview) -> dict[int, tuple[str, str]]:
    """The page's form: item id -> (decision, note) for each item whose keep/revoke radio is set."""
    decisions: dict[int, tuple[str, str]] = {}
    for raw in request.POST.getlist("item"):
        pk = posted_id({"id": raw}, "id")
        decision = request.POST.get(f"decision-{pk}", "")
        if pk and decision:
            decisions[pk] = (decision, request.POST.get(f"note-{pk}", ""))
    if request.POST.get("action") == "keep_undecided":
        posted = [posted_id({"id": raw}, "id") for raw in request.POST.getlist("item")]
        for item in review.items.filter(pk__in=posted, decision=ReviewDecision.UNDECIDED):
            decisions.setdefault(item.pk, (ReviewDecision.KEEP, request.POST.get(f"note-{item.pk}", "")))
    return decisions


def _complete(request: WorkspaceRequest, review: AccessReview) -> HttpResponse | None:
    """The Complete button: a confirmation naming what will happen, then the service. None: go back to the page."""
    revoke, keep = _n(review, "revoke"), _n(review, "keep")
    if not _n(review, "undecided") and (ask := unconfirmed(
        request, title=f"Complete the review {review.name}?", confirm_label="Complete review",
        cancel_url=reverse("review_detail", args=[review.workspace.slug, review.pk]),
        consequences=[
            f"{revoke} revocation{'s' if revoke != 1 else ''} will be applied now, with your own rights: any you could "
            "not make by hand (a grant your identity provider owns, the last Owner, a role your own role may not "
            "change) is recorded as refused, with the reason, and stays in place.",
            f"{keep} grant{'s' if keep != 1 else ''} marked keep stay{'s' if keep == 1 else ''} as they are.",
            "The review is then final: decisions no longer change, and the export's SHA-256 is recorded in the audit "
            "log with the counts.",
        ],
    )):
        return ask
    try:
        done = services.access_review_complete(review=review, actor=request.access.actor)
    except ServiceError as exc:
        messages.error(request, exc.message)
        return None
    counted = _review_or_404(request, done.pk)
    summary = (f"Review completed: {_n(counted, 'revoked')} revoked, {_n(counted, 'kept')} kept, "
               f"{_n(counted, 'not_held')} no longer held")
    if _n(counted, "refused"):
        messages.warning(request, f"{summary}, {_n(counted, 'refused')} refused: see the reasons below and ask an Owner "
                                  "(or your identity provider's admin) to change those.")
    else:
        messages.success(request, f"{summary}. Download the export below for your auditor.")
    return None


@require_http_methods(["GET", "POST"])
@workspace_view(need=Cap.REVIEW_MANAGE)
def review_detail(request: WorkspaceRequest, slug: str, review_id: int) -> HttpResponse:
    review = _review_or_404(request, review_id)
    decision = request.GET.get("decision", "")
    decision_filter = decision if decision in selectors.REVIEW_DECISION_FILTERS else None
    after = posted_id(request.GET, "after") or None
    if request.method == "POST":
        action = request.POST.get("action", "")
        if action == "complete":
            if (ask := _complete(request, review)) is not None:
                return ask
        elif action in ("save", "keep_undecided"):
            decisions = _posted_decisions(request, review)
            try:
                changed = services.access_review_decide_many(
                    review=review, decisions=decisions, actor=request.access.actor,
                )
            except ServiceError as exc:
                messages.error(request, exc.message)
            else:
                review = _review_or_404(request, review_id)
                left = _n(review, "undecided")
                saved = f"Saved {changed} decision{'s' if changed != 1 else ''}." if changed else "No decision changed."
                messages.success(request, f"{saved} {left} grant{'s' if left != 1 else ''} still undecided"
                                          f"{'' if left else ': you can complete the review'}.")
        else:
            raise Http404("Unknown action")
        return redirect(request.get_full_path())
    items, more = selectors.access_review_items_page(review=review, after=after, decision=decision_filter)
    query = {"decision": decision_filter} if decision_filter else {}
    return render(request, "workspaces/reviews/detail.html", _ctx(
        request, review=review, items=items, decision=decision_filter or "", paged=after is not None,
        first_url=f"?{urlencode(query)}" if query else "?",
        next_url=f"?{urlencode({**query, 'after': str(items[-1].pk)})}" if more and items else "",
        filters=[("", "All"), ("undecided", "Undecided"), ("keep", "Keep"), ("revoke", "Revoke")],
    ))


@require_GET
@workspace_view(need=Cap.REVIEW_MANAGE)
def review_export_file(request: WorkspaceRequest, slug: str, review_id: int, fmt: str) -> HttpResponse:
    """The review as CSV or JSON (the JSON of a completed review is the file whose SHA-256 the log holds)."""
    return review_export.export_response(_review_or_404(request, review_id), fmt)
