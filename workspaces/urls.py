from django.urls import path

from . import views, views_domains, views_invitations, views_role_map, views_sessions, views_twofactor

urlpatterns = [
    path("", views.home, name="home"),
    path("login/", views.login_view, name="login"),
    path("logout/", views.logout_view, name="logout"),
    path("w/<slug:slug>/", views.workspace_home, name="workspace_home"),
    path("w/<slug:slug>/members/", views.member_list, name="member_list"),
    path("w/<slug:slug>/members/add/", views.member_add, name="member_add"),
    path("w/<slug:slug>/invitations/<int:invitation_id>/", views_invitations.invitation_manage,
         name="invitation_manage"),
    path("invitations/<str:token>/", views_invitations.invitation_accept, name="invitation_accept"),
    path("w/<slug:slug>/members/<int:member_id>/", views.member_detail, name="member_detail"),
    path("w/<slug:slug>/teams/", views.team_list, name="team_list"),
    path("w/<slug:slug>/teams/new/", views.team_create, name="team_create"),
    path("w/<slug:slug>/teams/<int:team_id>/", views.team_detail, name="team_detail"),
    path("w/<slug:slug>/repositories/", views.repository_list, name="repository_list"),
    path("w/<slug:slug>/repositories/new/", views.repository_create, name="repository_create"),
    path("w/<slug:slug>/repositories/<int:repo_id>/", views.repository_detail, name="repository_detail"),
    path("w/<slug:slug>/api-keys/", views.api_keys, name="api_keys"),
    path("login/2fa/", views_twofactor.login_two_factor, name="login_2fa"),
    path("account/2fa/", views_twofactor.two_factor_settings, name="two_factor_settings"),
    path("w/<slug:slug>/settings/two-factor/", views_twofactor.workspace_two_factor, name="workspace_two_factor"),
    path("w/<slug:slug>/settings/deprovisioning/", views.deprovisioning, name="deprovisioning"),
    path("w/<slug:slug>/settings/sessions/", views_sessions.workspace_sessions, name="workspace_sessions"),
    path("w/<slug:slug>/settings/role-mapping/", views_role_map.role_map, name="role_map"),
    path("w/<slug:slug>/settings/domains/", views_domains.workspace_domains, name="workspace_domains"),
]
