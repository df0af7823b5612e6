"""SCIM credentials: each bound to exactly one workspace; only hashes of secrets are stored."""

from __future__ import annotations

from django.db import models
from django.utils import timezone


class CredentialKind(models.TextChoices):
    BEARER = "bearer", "Bearer token (HTTP header)"
    BASIC = "basic", "HTTP Basic key and secret"
    OAUTH = "oauth", "OAuth 2 client"


class ScimCredential(models.Model):
    """A way for one identity provider to reach one workspace's SCIM endpoints.

    ``key_id`` is public (the Basic username, or the visible prefix of a bearer token) and
    indexes the lookup; ``secret_hash`` is the SHA-256 of a server-generated 256-bit secret.
    Rotation creates a new credential and gives the old one an ``expires_at`` (overlap).
    """

    workspace = models.ForeignKey("workspaces.Workspace", on_delete=models.CASCADE, related_name="scim_credentials")
    kind = models.CharField(max_length=8, choices=CredentialKind.choices)
    name = models.CharField(max_length=100)
    key_id = models.CharField(max_length=64, unique=True)
    secret_hash = models.CharField(max_length=64)
    created_by = models.ForeignKey(
        "workspaces.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    last_used_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    rotated_from = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.get_kind_display()})"

    @property
    def is_live(self) -> bool:
        now = timezone.now()
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > now)
