from django.conf import settings
from django.contrib import admin
from django.urls import include, path

from workspaces import errors

urlpatterns = [
    path("admin/", admin.site.urls),
    path("", include("workspaces.audit_urls")),  # before the API's catch-all: /api/v1/workspaces/<slug>/audit-events/
    path("api/", include("workspaces.api.urls")),  # connector API, OpenAPI schema and docs (issue 5)
    path("", include("workspaces.urls")),
    path("", include("scim.web_urls")),
    path("oauth/", include("scim.oauth_urls")),
    path("scim/v2/<slug:slug>/", include("scim.urls")),
    path("", include("saml.urls")),
]

if settings.DEBUG:
    # The development IdP (saml/dev_idp/): never mounted without DEBUG, and its views refuse without it too.
    urlpatterns.append(path("dev-idp/", include("saml.dev_idp.urls")))

handler400 = errors.bad_request
handler403 = errors.forbidden
handler404 = errors.not_found
handler500 = errors.server_error
