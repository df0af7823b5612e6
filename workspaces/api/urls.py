"""``/api/`` (included once from config/urls.py): the v1 connector API, its OpenAPI schema and docs."""

from django.urls import path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from . import views

ws = "v1/workspaces/<slug:slug>/"

urlpatterns = [
    path("schema/", SpectacularAPIView.as_view(), name="api_schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="api_schema"), name="api_docs"),
    path("redoc/", SpectacularRedocView.as_view(url_name="api_schema"), name="api_redoc"),
    path(ws, views.WorkspaceDetail.as_view(), name="api_workspace"),
    path(f"{ws}members/", views.MemberList.as_view(), name="api_members"),
    path(f"{ws}members/<int:member_id>/", views.MemberDetail.as_view(), name="api_member"),
    path(f"{ws}teams/", views.TeamList.as_view(), name="api_teams"),
    path(f"{ws}teams/<int:team_id>/", views.TeamDetail.as_view(), name="api_team"),
    path(f"{ws}repositories/", views.RepositoryList.as_view(), name="api_repositories"),
    path(f"{ws}repositories/<int:repo_id>/", views.RepositoryDetail.as_view(), name="api_repository"),
    path(f"{ws}access-check", views.AccessCheck.as_view(), name="api_access_check"),
    re_path(r"^", views.not_found),  # last: any other /api/ path is a JSON 404
]
