"""SCIM credentials and the provisioning request log. Only hashes of secrets are stored."""

from __future__ import annotations

from django.db import models
from django.utils import timezone


class CredentialKind(models.TextChoices):
    BEARER = "bearer", "Bearer token (HTTP header)"
    BASIC = "basic", "HTTP Basic key and secret"
    OAUTH = "oauth", "OAuth 2 client"


class ScimCredential(models.Model):
    """A way for one identity provider to reach one workspace's SCIM endpoints.

    ``key_id`` is public (the Basic username, the visible prefix of a bearer token, or the
    OAuth client id) and indexes the lookup; ``secret_hash`` is the SHA-256 of a
    server-generated 256-bit secret (empty for OAuth clients: django-oauth-toolkit keeps
    the client secret hashed on the bound ``oauth_application``).
    Rotation creates a new credential and gives the old one an ``expires_at`` (overlap).
    """

    workspace = models.ForeignKey("workspaces.Workspace", on_delete=models.CASCADE, related_name="scim_credentials")
    kind = models.CharField(max_length=8, choices=CredentialKind.choices)
    name = models.CharField(max_length=100)
    key_id = models.CharField(max_length=64, unique=True)
    secret_hash = models.CharField(max_length=64, blank=True)
    # OAuth 2 clients only: the django-oauth-toolkit Application this credential binds to one workspace.
    oauth_application = models.OneToOneField(
        "oauth2_provider.Application",
        null=True, blank=True, on_delete=models.SET_NULL, related_name="scim_credential",
    )
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

    @property
    def status(self) -> str:
        """For people: live, expiring (rotated, still in its overlap), expired or revoked."""
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None:
            return "expiring" if self.expires_at > timezone.now() else "expired"
        return "live"

    @property
    def display_prefix(self) -> str:
        """What may be shown of the credential after creation (never the secret)."""
        if self.kind == CredentialKind.BEARER:
            return f"gs_{self.key_id}_…"
        if self.kind == CredentialKind.BASIC:
            return f"{self.key_id}:…"
        return self.key_id


class ScimRequestLog(models.Model):
    """One SCIM request as the provisioning page shows it. Never a header, body value or secret.

    Bounded: ``scim.request_log`` prunes each workspace to its newest rows (and by age) from
    the write path, a few rows at a time.
    """

    workspace = models.ForeignKey("workspaces.Workspace", on_delete=models.CASCADE, related_name="+")
    credential = models.ForeignKey(ScimCredential, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    auth_method = models.CharField(max_length=16, blank=True)
    method = models.CharField(max_length=8)
    path = models.CharField(max_length=512)
    status = models.PositiveSmallIntegerField()
    scim_type = models.CharField(max_length=32, blank=True)
    error_detail = models.CharField(max_length=500, blank=True)
    # Attribute names and PATCH operations the request touched (names only, never values).
    summary = models.CharField(max_length=255, blank=True)
    request_id = models.CharField(max_length=128, blank=True)
    ip = models.CharField(max_length=64, blank=True)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["workspace", "-id"], name="scim_reqlog_ws_newest")]

    def __str__(self) -> str:
        return f"{self.method} {self.path} -> {self.status}"


class ScimListIndex(models.Model):
    """How many members a workspace's unfiltered SCIM Users list has, and where its pages start.

    Kept by ``scim.list_index``: ``version`` is bumped in the transaction of every change of the
    SCIM-visible member set; ``built_version`` says which version ``total`` and ``anchors`` describe.
    ``anchors`` are the user ids of the members at positions ``stride``, ``2 * stride``, ... in
    user-id order (comma-separated: read on every list request, parsed once per process and build).
    """

    workspace = models.OneToOneField(
        "workspaces.Workspace", primary_key=True, on_delete=models.CASCADE, related_name="+"
    )
    version = models.BigIntegerField()
    built_version = models.BigIntegerField(null=True, blank=True)
    stride = models.PositiveIntegerField(default=0)
    total = models.PositiveIntegerField(default=0)
    anchors = models.TextField(blank=True, default="")

    def __str__(self) -> str:
        return f"SCIM list index of workspace {self.workspace_id} (v{self.version}, built v{self.built_version})"
