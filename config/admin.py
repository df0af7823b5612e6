"""Periodic job runs in the Django admin, read-only: when each job last started, how often it ran and was skipped."""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest

from .models import PeriodicJobRun


@admin.register(PeriodicJobRun)
class PeriodicJobRunAdmin(admin.ModelAdmin):
    list_display = ("name", "last_started_at", "runs", "skipped")
    readonly_fields = ("name", "last_started_at", "runs", "skipped")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False
