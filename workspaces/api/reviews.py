"""Access reviews over the connector API (docs/access-reviews.md): the same services and rules as the portal's pages.

Reading needs ``reviews:read`` (or ``reviews:write``), changing ``reviews:write``; a personal key also needs its
member to be an Owner or an auditor (``Cap.REVIEW_MANAGE``), as in the portal. Completing applies the revocations
with the key's authority: a service key must also hold the write scope of each kind of grant it revokes.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, inline_serializer
from rest_framework import exceptions, serializers, status
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from workspaces import review_export, selectors, services
from workspaces.entitlements import EntitlementKind
from workspaces.models import AccessReview, ReviewDecision, ReviewScope
from workspaces.roles import ApiScope, Cap

from .governance import _PAGING, WRITE_SCOPE, _page_params, _paged, _paginated
from .serializers import MAX_ID, ErrorSerializer, StrictCharField, StrictIntegerField
from .views import _ERRORS, _ERRORS_404, _SLUG, ApiView, _filters

_REVIEW_ID = OpenApiParameter("review_id", OpenApiTypes.INT, OpenApiParameter.PATH, description="Access review id.")
_ITEM_ID = OpenApiParameter("item_id", OpenApiTypes.INT, OpenApiParameter.PATH, description="Item id (a grant).")
_DECISIONS = [ReviewDecision.KEEP.value, ReviewDecision.REVOKE.value]


class ReviewCountsSerializer(serializers.Serializer):
    items = serializers.IntegerField()
    decisions = inline_serializer("ReviewDecisionCounts", {
        "keep": serializers.IntegerField(), "revoke": serializers.IntegerField(), "undecided": serializers.IntegerField(),
    })
    outcomes = inline_serializer("ReviewOutcomeCounts", {
        "kept": serializers.IntegerField(), "revoked": serializers.IntegerField(),
        "not_held": serializers.IntegerField(), "refused": serializers.IntegerField(),
    })


class ReviewSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    workspace = serializers.CharField()
    name = serializers.CharField()
    scope = inline_serializer("ReviewScopeDoc", {
        "kind": serializers.ChoiceField(choices=ReviewScope.choices),
        "id": serializers.IntegerField(allow_null=True), "label": serializers.CharField(),
    })
    status = serializers.ChoiceField(choices=["open", "completed"])
    created_by = serializers.CharField()
    created_at = serializers.DateTimeField()
    completed_by = serializers.CharField(allow_null=True)
    completed_at = serializers.DateTimeField(allow_null=True)
    counts = ReviewCountsSerializer()
    export_sha256 = serializers.CharField(allow_null=True, help_text="Completed reviews: the SHA-256 of the JSON "
                                          "export, also recorded in the access_review.completed audit event.")


class ReviewItemSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    entitlement = serializers.CharField()
    kind = serializers.ChoiceField(choices=EntitlementKind.choices)
    label = serializers.CharField()  # type: ignore[assignment]  # a field named like a Field attribute
    principal = inline_serializer("ReviewPrincipal", {
        "type": serializers.ChoiceField(choices=["member", "team"]), "id": serializers.IntegerField(),
        "label": serializers.CharField(),
    })
    source = serializers.CharField()  # type: ignore[assignment]
    idp_owned = serializers.CharField(allow_null=True)
    decision = serializers.ChoiceField(choices=_DECISIONS, allow_null=True)
    decided_by = serializers.CharField(allow_null=True)
    decided_at = serializers.DateTimeField(allow_null=True)
    note = serializers.CharField(allow_blank=True)
    outcome = serializers.ChoiceField(choices=["kept", "revoked", "not_held", "refused"], allow_null=True)
    outcome_detail = serializers.CharField(allow_blank=True)


class ReviewStartSerializer(serializers.Serializer):
    name = StrictCharField(max_length=200)
    scope = serializers.ChoiceField(choices=ReviewScope.choices, default=ReviewScope.WORKSPACE)
    scope_id = StrictIntegerField(required=False, min_value=1, max_value=MAX_ID,
                                        help_text="The team or repository id (scope team or repository).")


class ReviewDecisionSerializer(serializers.Serializer):
    decision = serializers.ChoiceField(choices=_DECISIONS)
    note = StrictCharField(required=False, allow_blank=True, max_length=2000)


class ReviewItemFilterSerializer(serializers.Serializer):
    decision = serializers.ChoiceField(choices=list(selectors.REVIEW_DECISION_FILTERS), required=False,
                                       allow_blank=True, help_text="keep, revoke or undecided; empty: all.")


class ReviewExportFilterSerializer(serializers.Serializer):
    format = serializers.ChoiceField(choices=["json", "csv"], required=False, default="json")


class _CsvRenderer(BaseRenderer):
    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(self, data: Any, accepted_media_type: str | None = None, renderer_context: Any = None) -> bytes:
        return JSONRenderer().render(data)  # only errors reach a renderer: the export itself is a ready response


def review_doc(review: AccessReview) -> dict[str, Any]:
    return {**review_export.review_document(review), "export_sha256": review.export_sha256 or None}


class _ReviewsView(ApiView, APIView):
    required_cap = Cap.REVIEW_MANAGE
    required_scope = None  # read or write scope: checked in ``initial``
    writes: tuple[str, ...] = ()

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)
        principal = self.principal
        if principal.has_scope(ApiScope.REVIEWS_WRITE):
            return
        if request.method in self.writes:
            raise exceptions.PermissionDenied("This API key lacks the 'reviews:write' scope.")
        if not principal.has_scope(ApiScope.REVIEWS_READ):
            raise exceptions.PermissionDenied("This API key lacks the 'reviews:read' scope.")

    def review(self, review_id: int) -> AccessReview:
        review = selectors.access_review_for(self.principal.workspace, review_id)
        if review is None:
            raise exceptions.NotFound("No such access review in this workspace.")
        return review


@extend_schema(tags=["access reviews"], parameters=[_SLUG])
class ReviewList(_ReviewsView):
    """Access reviews of the workspace, newest first; or start one (a snapshot of the grants in scope)."""

    writes = ("POST",)

    @extend_schema(operation_id="workspaces_reviews_list", parameters=_PAGING, responses={200: _paginated(ReviewSerializer(many=True), "PaginatedReviewList"),
                                                  **_ERRORS})
    def get(self, request: Request, slug: str) -> Response:
        _filters(serializers.Serializer, request)
        after, size = _page_params(request, 1)
        qs = selectors.access_reviews_of(self.principal.workspace).select_related("workspace")
        if after:
            qs = qs.filter(pk__lt=after[0])
        rows = list(qs.order_by("-pk")[: size + 1])
        page = rows[:size]
        return _paged(request, [review_doc(r) for r in page], (page[-1].pk,) if page else None, len(rows) > size)

    @extend_schema(request=ReviewStartSerializer, responses={201: ReviewSerializer, **_ERRORS_404})
    def post(self, request: Request, slug: str) -> Response:
        body = ReviewStartSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        review = services.access_review_start(
            workspace=self.principal.workspace, actor=self.principal.actor, name=data["name"],
            scope_kind=data["scope"], scope_id=data.get("scope_id"),
        )
        return Response(review_doc(self.review(review.pk)), status=status.HTTP_201_CREATED)


@extend_schema(tags=["access reviews"], parameters=[_SLUG, _REVIEW_ID],
               responses={200: ReviewSerializer, **_ERRORS_404})
class ReviewDetail(_ReviewsView):
    """One review with its counts."""

    def get(self, request: Request, slug: str, review_id: int) -> Response:
        return Response(review_doc(self.review(review_id)))


@extend_schema(tags=["access reviews"], parameters=[_SLUG, _REVIEW_ID, ReviewItemFilterSerializer, *_PAGING],
               responses={200: _paginated(ReviewItemSerializer(many=True), "PaginatedReviewItemList"),
                          **_ERRORS_404})
class ReviewItems(_ReviewsView):
    """The review's grants (a snapshot taken when it started) with their decisions and, once completed, outcomes."""

    def get(self, request: Request, slug: str, review_id: int) -> Response:
        review = self.review(review_id)
        f = _filters(ReviewItemFilterSerializer, request)
        after, size = _page_params(request, 1)
        items, more = selectors.access_review_items_page(
            review=review, after=after[0] if after else None, limit=size, decision=f.get("decision") or None,
        )
        return _paged(request, [review_export.item_document(i) for i in items], (items[-1].pk,) if items else None,
                      more)


@extend_schema(tags=["access reviews"], parameters=[_SLUG, _REVIEW_ID, _ITEM_ID])
class ReviewItemDecide(_ReviewsView):
    """Set one grant's decision, keep or revoke, with an optional note (open reviews only)."""

    writes = ("PUT",)

    @extend_schema(request=ReviewDecisionSerializer, responses={
        200: ReviewItemSerializer, **_ERRORS_404,
        409: OpenApiResponse(ErrorSerializer, description="code review_completed: decisions of a completed review are "
                             "final."),
    })
    def put(self, request: Request, slug: str, review_id: int, item_id: int) -> Response:
        review = self.review(review_id)
        item = selectors.access_review_item_for(review, item_id)
        if item is None:
            raise exceptions.NotFound("No such item in this review.")
        body = ReviewDecisionSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        services.access_review_decide(item=item, decision=body.validated_data["decision"],
                                      note=body.validated_data.get("note", item.note), actor=self.principal.actor)
        return Response(review_export.item_document(item))


@extend_schema(tags=["access reviews"], parameters=[_SLUG, _REVIEW_ID], request=None, responses={
    200: ReviewSerializer, **_ERRORS_404,
    409: OpenApiResponse(ErrorSerializer, description="code review_completed: already completed; code undecided: some "
                         "grants have no decision yet."),
})
class ReviewComplete(_ReviewsView):
    """Complete the review: every revoke decision is applied through the same services as the portal (each outcome
    recorded: revoked, not_held, or refused with the reason), and access_review.completed is written with the counts
    and the export's SHA-256. A 409 (code undecided) while grants are undecided. A service key must also hold the write scope of each
    kind of grant it revokes (roles:write, teams:write, repositories:write; owners:write for the Owner role)."""

    writes = ("POST",)

    def post(self, request: Request, slug: str, review_id: int) -> Response:
        review = self.review(review_id)
        if review.is_open:
            missing = sorted({WRITE_SCOPE[k].value for k in selectors.access_review_revoked_kinds(review)
                              if k in WRITE_SCOPE and not self.principal.has_scope(WRITE_SCOPE[k])})
            if missing:
                raise exceptions.PermissionDenied(
                    f"This API key lacks the scope{'s' if len(missing) > 1 else ''} to apply these revocations: "
                    f"{', '.join(missing)}.")
        services.access_review_complete(review=review, actor=self.principal.actor)
        return Response(review_doc(self.review(review_id)))


@extend_schema(tags=["access reviews"], parameters=[_SLUG, _REVIEW_ID, ReviewExportFilterSerializer], responses={
    (200, "application/json"): OpenApiResponse(OpenApiTypes.OBJECT, description=(
        '{"review": {...}, "items": [...]}: deterministic; a completed review\'s SHA-256 is in the audit log.')),
    (200, "text/csv"): OpenApiResponse(OpenApiTypes.STR, description="One row per grant."),
    **_ERRORS_404,
})
class ReviewExport(_ReviewsView):
    """The review as evidence: JSON (default) or CSV (``format=csv``)."""

    renderer_classes = [JSONRenderer, _CsvRenderer]  # a client asking for text/csv is answered, not refused (406)

    def get(self, request: Request, slug: str, review_id: int) -> HttpResponse:
        review = self.review(review_id)
        fmt = _filters(ReviewExportFilterSerializer, request).get("format") or "json"
        return review_export.export_response(review, fmt)
