from django.urls import path

from . import api, views

urlpatterns = [
    path("w/<slug:slug>/audit/", views.audit_list, name="audit_list"),
    path("w/<slug:slug>/audit/export.<str:export_format>", views.audit_export, name="audit_export"),
    path("w/<slug:slug>/audit/sinks/", views.audit_sinks, name="audit_sinks"),
    path("w/<slug:slug>/audit/<int:event_id>/", views.audit_event, name="audit_event"),
    path("api/v1/workspaces/<slug:slug>/audit-events/", api.AuditEventList.as_view(), name="api_audit_events"),
]
