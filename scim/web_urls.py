"""Web pages of the scim app (the SCIM protocol endpoints live in ``scim.urls``)."""

from django.urls import path

from . import web_views

urlpatterns = [
    path("w/<slug:slug>/settings/provisioning/", web_views.provisioning, name="scim_provisioning"),
    path("w/<slug:slug>/settings/provisioning/requests/", web_views.request_log, name="scim_request_log"),
]
