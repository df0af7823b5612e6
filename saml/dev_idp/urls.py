"""Mounted under /dev-idp/ by config/urls.py, only when DEBUG is on."""

from django.urls import path

from . import views

urlpatterns = [
    path("<slug:slug>/metadata/", views.metadata, name="dev_idp_metadata"),
    path("<slug:slug>/sso/", views.sso, name="dev_idp_sso"),
]
