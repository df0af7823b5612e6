"""``/oauth/``: django-oauth-toolkit's authorize (with our Owner check), token and revoke endpoints.

Only these three: DOT's application-management and dynamic-registration views are not mounted
(any signed-in user could register clients there). OAuth clients are made on the provisioning page.
"""

from django.urls import path
from oauth2_provider import views as dot_views

from .oauth import ScimAuthorizationView, ScimTokenView

app_name = "oauth2_provider"

urlpatterns = [
    path("authorize/", ScimAuthorizationView.as_view(), name="authorize"),
    path("token/", ScimTokenView.as_view(), name="token"),
    path("revoke_token/", dot_views.RevokeTokenView.as_view(), name="revoke-token"),
]
