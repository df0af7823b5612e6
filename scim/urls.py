"""``/scim/v2/<slug>/...``: every path goes to the one SCIM entry point, which routes it."""

from django.urls import re_path

from . import views

app_name = "scim"

urlpatterns = [
    re_path(r"^(?P<path>.*)$", views.scim_endpoint, name="endpoint"),
]
