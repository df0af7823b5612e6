"""``/api/`` (included once from config/urls.py): the v1 connector API, its OpenAPI schema and docs."""

from django.urls import path, re_path
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from config.security_headers import content_security_policy

from . import governance, reviews, views

# Swagger UI and Redoc ship inline script and style (and Redoc its fonts and a worker): their pages only.
_DOCS_POLICY = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline' https://fonts.googleapis.com; "
    "font-src 'self' https://fonts.gstatic.com; img-src 'self' data: https://cdn.redoc.ly; worker-src 'self' blob:; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
)
_docs = content_security_policy(_DOCS_POLICY)

ws = "v1/workspaces/<slug:slug>/"

urlpatterns = [
    path("schema/", SpectacularAPIView.as_view(), name="api_schema"),
    path("docs/", _docs(SpectacularSwaggerView.as_view(url_name="api_schema")), name="api_docs"),
    path("redoc/", _docs(SpectacularRedocView.as_view(url_name="api_schema")), name="api_redoc"),
    path(ws, views.WorkspaceDetail.as_view(), name="api_workspace"),
    path(f"{ws}members/", views.MemberList.as_view(), name="api_members"),
    path(f"{ws}members/<int:member_id>/", views.MemberDetail.as_view(), name="api_member"),
    path(f"{ws}teams/", views.TeamList.as_view(), name="api_teams"),
    path(f"{ws}teams/<int:team_id>/", views.TeamDetail.as_view(), name="api_team"),
    path(f"{ws}repositories/", views.RepositoryList.as_view(), name="api_repositories"),
    path(f"{ws}repositories/<int:repo_id>/", views.RepositoryDetail.as_view(), name="api_repository"),
    path(f"{ws}access-check", views.AccessCheck.as_view(), name="api_access_check"),
    # Identity governance: entitlements, grants, provisioning (docs/api.md, "Governance").
    path(f"{ws}entitlements/", governance.EntitlementList.as_view(), name="api_entitlements"),
    path(f"{ws}grants/", governance.GrantList.as_view(), name="api_grants"),
    path(f"{ws}grants/revoke/", governance.GrantRevoke.as_view(), name="api_grant_revoke"),
    path(f"{ws}members/<int:member_id>/deactivate/", governance.MemberDeactivate.as_view(), name="api_member_deactivate"),
    path(f"{ws}members/<int:member_id>/reactivate/", governance.MemberReactivate.as_view(), name="api_member_reactivate"),
    # Access reviews (workspaces/api/reviews.py).
    path(f"{ws}reviews/", reviews.ReviewList.as_view(), name="api_reviews"),
    path(f"{ws}reviews/<int:review_id>/", reviews.ReviewDetail.as_view(), name="api_review"),
    path(f"{ws}reviews/<int:review_id>/items/", reviews.ReviewItems.as_view(), name="api_review_items"),
    path(f"{ws}reviews/<int:review_id>/items/<int:item_id>/", reviews.ReviewItemDecide.as_view(), name="api_review_item"),
    path(f"{ws}reviews/<int:review_id>/complete/", reviews.ReviewComplete.as_view(), name="api_review_complete"),
    path(f"{ws}reviews/<int:review_id>/export/", reviews.ReviewExport.as_view(), name="api_review_export"),
    # Last: any other /api/ path, whatever the method, is a JSON 404 (not a CSRF refusal: it changes nothing).
    re_path(r"^", csrf_exempt(views.not_found)),
]
