from django.contrib import admin
from django.urls import include, path

from workspaces import errors

urlpatterns = [
    path("admin/", admin.site.urls),
    path("", include("audit.urls")),
    path("", include("workspaces.urls")),
    path("", include("scim.web_urls")),
    path("oauth/", include("scim.oauth_urls")),
    path("scim/v2/<slug:slug>/", include("scim.urls")),
]

handler403 = errors.forbidden
handler404 = errors.not_found
