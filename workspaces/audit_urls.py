"""The workspace's audit pages and the audit-events endpoint (included from config/urls.py before the API's
catch-all). The pages and the endpoint live on the workspaces side: ``audit`` knows no roles."""

from django.urls import path

from . import views_audit
from .api.audit_events import AuditEventList

urlpatterns = [
    path("w/<slug:slug>/audit/", views_audit.audit_list, name="audit_list"),
    path("w/<slug:slug>/audit/export.<str:export_format>", views_audit.audit_export, name="audit_export"),
    path("w/<slug:slug>/audit/sinks/", views_audit.audit_sinks, name="audit_sinks"),
    path("w/<slug:slug>/audit/<int:event_id>/", views_audit.audit_event, name="audit_event"),
    path("api/v1/workspaces/<slug:slug>/audit-events/", AuditEventList.as_view(), name="api_audit_events"),
]
