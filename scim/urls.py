"""``/scim/v2/<slug>/...``: every path goes to the one SCIM entry point, which routes it."""

from django.urls import re_path

from .protocol.router import scim_endpoint

app_name = "scim"

urlpatterns = [
    re_path(r"^(?P<path>.*)$", scim_endpoint, name="endpoint"),
]
