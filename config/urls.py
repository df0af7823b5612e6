from django.contrib import admin
from django.urls import include, path

from workspaces import errors

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/", include("workspaces.api.urls")),  # connector API, OpenAPI schema and docs (issue 5)
    path("", include("audit.urls")),
    path("", include("workspaces.urls")),
    path("", include("scim.web_urls")),
    path("oauth/", include("scim.oauth_urls")),
    path("scim/v2/<slug:slug>/", include("scim.urls")),
    path("", include("saml.urls")),
]

handler403 = errors.forbidden
handler404 = errors.not_found
