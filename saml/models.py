"""How people log in through their company's IdP: per-workspace SAML settings and the stores the ACS needs.

Rows and constraints only; every change goes through ``saml.services``.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from workspaces.roles import Role

DEFAULT_CLOCK_SKEW_SECONDS = 120


class SamlSettings(models.Model):
    """One workspace's IdP as parsed from its metadata, plus how its assertions map to members."""

    workspace = models.OneToOneField("workspaces.Workspace", on_delete=models.CASCADE, related_name="saml_settings")
    # What the admin gave us: pasted metadata XML, or a URL refreshed daily (the last good XML is kept).
    metadata_xml = models.TextField(blank=True)
    metadata_url = models.URLField(max_length=500, blank=True)
    metadata_fetched_at = models.DateTimeField(null=True, blank=True)
    metadata_refresh_error = models.CharField(max_length=500, blank=True)
    # Parsed from the metadata on save (never from a response).
    idp_entity_id = models.CharField(max_length=500)
    sso_urls = models.JSONField(default=list, help_text="[{'binding': ..., 'location': ...}]")
    # Base64 DER of every signing certificate (several during rollover). The only keys a response may use.
    certificates = models.JSONField(default=list)
    # Attribute mapping. Empty email attribute = the NameID (Okta: Name ID format EmailAddress).
    email_attribute = models.CharField(max_length=200, blank=True)
    first_name_attribute = models.CharField(max_length=200, blank=True, default="firstName")
    last_name_attribute = models.CharField(max_length=200, blank=True, default="lastName")
    groups_attribute = models.CharField(max_length=200, blank=True, default="groups")
    # Empty: the IdP sends no role. Else its value goes through the workspace's role mapping, as SCIM's role does.
    role_attribute = models.CharField(max_length=200, blank=True, default="")
    # The IdP's immutable id for a person: "" (none: email only), "NameID" (a persistent NameID), or an attribute
    # name (Okta: a user.id mapping; Entra: http://schemas.microsoft.com/identity/claims/objectidentifier).
    subject_attribute = models.CharField(max_length=200, blank=True, default="")
    idp_initiated = models.BooleanField(default=False, help_text="Accept unsolicited responses started at the IdP.")
    allow_sha1 = models.BooleanField(default=False, help_text="Accept RSA-SHA1 signatures (legacy IdPs only).")
    clock_skew_seconds = models.PositiveIntegerField(default=DEFAULT_CLOCK_SKEW_SECONDS)
    group_sync_enabled = models.BooleanField(default=False)
    last_test_succeeded_at = models.DateTimeField(null=True, blank=True)
    last_test_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # A change of IdP staged while SAML-only is enforced (docs/saml.md, "Changing the IdP while SAML-only is
    # enforced"): metadata_xml, metadata_url, entity_id, sso_urls, certificates, staged_at, staged_by. It becomes
    # live only through a successful Test SSO answered by it; the live IdP keeps working meanwhile. {} when none.
    pending_idp = models.JSONField(default=dict, blank=True)
    # This portal's own key pair (SpKey) at work: sign AuthnRequests (Redirect binding, RSA-SHA256) and refuse any
    # assertion that is not encrypted to it. Both off by default; both need an active SP key.
    # db_default: rows the previous release inserts during a rolling upgrade get the column's value from the database.
    sign_authn_requests = models.BooleanField(default=False, db_default=False)
    require_encrypted_assertions = models.BooleanField(default=False, db_default=False)
    # What the IdP asserted at the last successful Test SSO (groups, teams and role a login would give).
    last_test_result = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    version = models.PositiveIntegerField(default=1)

    class Meta:
        verbose_name = "SAML settings"
        verbose_name_plural = "SAML settings"

    def __str__(self) -> str:
        return f"SAML for {self.workspace_id}: {self.idp_entity_id}"


class SpKeyState(models.TextChoices):
    NEXT = "next", "Next (published, decrypts, does not sign yet)"
    ACTIVE = "active", "Active (signs, decrypts, published)"
    PREVIOUS = "previous", "Previous (decrypts during the grace period, no longer published)"
    RETIRED = "retired", "Retired (its private key is erased)"


class SpKey(models.Model):
    """This portal's key pair as the SP of one workspace: it signs AuthnRequests and receives encrypted assertions.

    Generated here (``saml.sp_keys``); the certificate is public (SP metadata), the private key is kept only as a
    Fernet token (``key_encrypted``) and never shown. Rollover: next -> active -> previous -> retired
    (docs/saml.md, "SP key rollover"); at most one key is active and one is next per workspace.
    """

    saml_settings = models.ForeignKey(SamlSettings, on_delete=models.CASCADE, related_name="sp_keys")
    cert_pem = models.TextField()
    key_encrypted = models.TextField(blank=True, help_text="Fernet token of the PKCS#8 private key; '' once retired.")
    fingerprint_sha256 = models.CharField(max_length=95)
    not_valid_after = models.DateTimeField()
    state = models.CharField(max_length=8, choices=SpKeyState.choices)
    created_at = models.DateTimeField(default=timezone.now)
    activated_at = models.DateTimeField(null=True, blank=True)
    retired_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at", "pk"]
        constraints = [
            models.UniqueConstraint(fields=["saml_settings"], condition=models.Q(state="active"),
                                    name="sp_key_one_active"),
            models.UniqueConstraint(fields=["saml_settings"], condition=models.Q(state="next"),
                                    name="sp_key_one_next"),
        ]

    def __str__(self) -> str:
        return f"SP key {self.fingerprint_sha256[:23]} ({self.state})"


class GroupMapping(models.Model):
    """An IdP group value -> a team and/or an org role. The highest priority role mapping wins."""

    workspace = models.ForeignKey("workspaces.Workspace", on_delete=models.CASCADE, related_name="saml_group_mappings")
    idp_group = models.CharField(max_length=255)
    team = models.ForeignKey(
        "workspaces.Team", null=True, blank=True, on_delete=models.CASCADE, related_name="saml_group_mappings"
    )
    role = models.CharField(max_length=16, choices=Role.choices, blank=True)
    priority = models.IntegerField(default=0, help_text="Higher wins when several mapped groups give a role.")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-priority", "idp_group"]
        constraints = [
            models.UniqueConstraint(fields=["workspace", "idp_group", "team"], name="group_mapping_unique"),
            models.CheckConstraint(condition=models.Q(team__isnull=False) | ~models.Q(role=""), name="group_mapping_does_something"),
        ]

    def __str__(self) -> str:
        return f"{self.idp_group} -> {self.team_id or ''} {self.role}"


class SamlMemberState(models.Model):
    """What the IdP last said about a member: whether its role came from group sync, and its groups."""

    membership = models.OneToOneField("workspaces.Membership", on_delete=models.CASCADE, related_name="saml_state")
    role_from_idp = models.BooleanField(default=False)
    groups = models.JSONField(default=list, blank=True)
    last_sso_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"SAML state of membership {self.membership_id}"


class AuthnRequestPurpose(models.TextChoices):
    LOGIN = "login", "Login"
    TEST = "test", "Test SSO"


class IssuedAuthnRequest(models.Model):
    """An AuthnRequest this portal sent. Kept in the database so every web process can match InResponseTo."""

    workspace = models.ForeignKey("workspaces.Workspace", on_delete=models.CASCADE, related_name="+")
    request_id = models.CharField(max_length=64, unique=True)
    purpose = models.CharField(max_length=8, choices=AuthnRequestPurpose.choices, default=AuthnRequestPurpose.LOGIN)
    next_url = models.CharField(max_length=1000, blank=True)
    # Test SSO: the Owner who started the run (the ACS only finishes it in that person's session).
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    consumed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["expires_at"], name="saml_authnreq_expires")]

    def __str__(self) -> str:
        return self.request_id


class UsedAssertion(models.Model):
    """Replay store: an assertion ID accepted once is refused until it would have expired anyway."""

    workspace = models.ForeignKey("workspaces.Workspace", on_delete=models.CASCADE, related_name="+")
    assertion_id = models.CharField(max_length=256)
    expires_at = models.DateTimeField()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["workspace", "assertion_id"], name="used_assertion_unique")]
        indexes = [models.Index(fields=["expires_at"], name="saml_used_assertion_expires")]

    def __str__(self) -> str:
        return self.assertion_id


class BreakGlassCode(models.Model):
    """A one-time recovery code for Owners when the IdP is down. Only a SHA-256 is stored (128-bit random codes)."""

    workspace = models.ForeignKey("workspaces.Workspace", on_delete=models.CASCADE, related_name="break_glass_codes")
    code_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(default=timezone.now)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    used_at = models.DateTimeField(null=True, blank=True)
    used_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at"]

    def __str__(self) -> str:
        return f"break-glass code {self.pk} of workspace {self.workspace_id}"
