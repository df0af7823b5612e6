from django.urls import path

from . import views

urlpatterns = [
    path("w/<slug:slug>/settings/sso/", views.sso_settings, name="sso_settings"),
    path("w/<slug:slug>/settings/sso/test/", views.sso_test_result, name="sso_test_result"),
    path("w/<slug:slug>/settings/group-sync/", views.group_sync, name="group_sync"),
    path("saml/discover/", views.discover, name="saml_discover"),
    path("saml/<slug:slug>/login/", views.login, name="saml_login"),
    path("saml/<slug:slug>/acs/", views.acs, name="saml_acs"),
    path("saml/<slug:slug>/metadata/", views.metadata, name="saml_metadata"),
    path("saml/<slug:slug>/break-glass/", views.break_glass, name="saml_break_glass"),
]
