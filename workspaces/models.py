"""Who belongs where, with which rights. Rows and their constraints only; rules live in services."""

from __future__ import annotations

from typing import Any, ClassVar

from django.contrib.auth.base_user import AbstractBaseUser, BaseUserManager
from django.contrib.auth.models import PermissionsMixin
from django.core.validators import RegexValidator
from django.db import models
from django.db.models import Q
from django.db.models.functions import Lower
from django.utils import timezone

from .roles import Role


class UserManager(BaseUserManager["User"]):
    use_in_migrations = True

    @classmethod
    def normalize_email(cls, email: str | None) -> str:
        return (email or "").strip()

    def get_by_natural_key(self, email: str | None) -> User:
        # Emails are unique case-insensitively; logins match them that way too.
        return self.get(email__iexact=email)

    def create_user(self, email: str, password: str | None = None, **extra: Any) -> User:
        if not email:
            raise ValueError("An email address is required.")
        user = self.model(email=self.normalize_email(email), **extra)
        user.set_password(password) if password else user.set_unusable_password()
        user.save(using=self._db)
        return user

    def create_superuser(self, email: str, password: str | None = None, **extra: Any) -> User:
        extra.setdefault("is_staff", True)
        extra.setdefault("is_superuser", True)
        return self.create_user(email, password, **extra)


class User(AbstractBaseUser, PermissionsMixin):
    """The global account. Authority inside a workspace comes only from a Membership."""

    email = models.EmailField(max_length=254)
    full_name = models.CharField(max_length=200, blank=True)
    is_active = models.BooleanField(default=True, help_text="Off: support disabled the whole account.")
    is_staff = models.BooleanField(default=False, help_text="May use the Django admin (support staff).")
    date_joined = models.DateTimeField(default=timezone.now)

    objects = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS: ClassVar[list[str]] = []

    class Meta:
        constraints = [models.UniqueConstraint(Lower("email"), name="user_email_ci_unique")]

    def __str__(self) -> str:
        return self.email

    @property
    def two_factor_enabled(self) -> bool:
        """True once a TOTP device is confirmed. Lists annotate ``has_confirmed_totp`` to avoid a query per row."""
        annotated = self.__dict__.get("has_confirmed_totp")
        if annotated is not None:
            return bool(annotated)
        from django_otp.plugins.otp_totp.models import TOTPDevice

        return TOTPDevice.objects.filter(user_id=self.pk, confirmed=True).exists()

    def get_full_name(self) -> str:
        return self.full_name or self.email

    def get_short_name(self) -> str:
        return self.full_name.split(" ")[0] if self.full_name else self.email


slug_validator = RegexValidator(
    r"^[a-z0-9](?:[a-z0-9-]{0,48}[a-z0-9])?$",
    "Use 1-50 lowercase letters, digits and hyphens, starting and ending with a letter or digit.",
)


class UnknownIdpRole(models.TextChoices):
    """What a role value from the IdP that no mapping names does (workspaces.services.role_map)."""

    REJECT = "reject", "Refuse it, naming the accepted values"
    DEFAULT = "default", "Give the workspace's default role"


class Workspace(models.Model):
    """A customer organisation. Its slug is in every URL."""

    slug = models.CharField(max_length=50, unique=True, validators=[slug_validator])
    name = models.CharField(max_length=200)
    saml_only = models.BooleanField(default=False, help_text="Password logins are refused for this workspace.")
    scim_enabled = models.BooleanField(default=False)
    jit_provisioning = models.BooleanField(default=False, help_text="SSO may create unknown members.")
    default_role = models.CharField(max_length=16, choices=Role.choices, default=Role.MEMBER)
    scim_may_grant_owner = models.BooleanField(
        default=False, help_text="Off (default): SCIM and group sync can never make an Owner."
    )
    require_2fa = models.BooleanField(default=False, help_text="Password logins need a second factor.")
    audit_retention_days = models.PositiveIntegerField(default=365)
    # Sign-ins into this workspace last at most this long (seconds); None: SESSION_COOKIE_AGE.
    session_max_age = models.PositiveIntegerField(null=True, blank=True)
    # "Sign everyone out": grants issued before this no longer open the workspace.
    sessions_valid_after = models.DateTimeField(null=True, blank=True)
    # While SAML-only is enforced, a personal API key acts only this long (seconds) after its member's last sign-in
    # through the workspace's IdP (workspaces.policy.personal_key_sso_problem). Service keys are not bound to anyone.
    api_key_sso_window = models.PositiveIntegerField(default=7 * 86400)
    # A role value from the IdP (SCIM ``role``) that neither a RoleMapping nor a Gatehouse role name matches.
    unknown_idp_role = models.CharField(max_length=8, choices=UnknownIdpRole.choices, default=UnknownIdpRole.REJECT)
    # Off (default): the connector API may not change what the IdP owns (a role it mapped, a team it pushes), the
    # same rule as the portal's; on: a governance tool's decision wins until the IdP next changes it.
    api_may_override_idp = models.BooleanField(default=False, db_default=False)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.slug

    @property
    def policy(self) -> dict[str, Any]:
        return {
            "saml_only": self.saml_only,
            "scim_enabled": self.scim_enabled,
            "jit_provisioning": self.jit_provisioning,
            "default_role": self.default_role,
            "require_2fa": self.require_2fa,
            "api_key_sso_window_seconds": self.api_key_sso_window,
            "api_may_override_idp": self.api_may_override_idp,
        }


class Visibility(models.TextChoices):
    PUBLIC = "public", "Public"
    PRIVATE = "private", "Private"


class Membership(models.Model):
    """A user in a workspace: the SCIM User resource and the holder of an org role."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.MEMBER)
    visibility = models.CharField(max_length=8, choices=Visibility.choices, default=Visibility.PUBLIC)
    is_active = models.BooleanField(default=True)
    is_auditor = models.BooleanField(default=False, help_text="May read the audit log whatever the role.")
    # SCIM: the IdP's id for this person, and the userName it sent (case kept, unique case-insensitively).
    external_id = models.CharField(max_length=255, blank=True)
    scim_username = models.CharField(max_length=255, blank=True)
    # The directory link (docs/architecture.md, "Directory link"). The email the workspace's IdP knows this member
    # by (SCIM's primary email, or the one a SAML login asserted): SSO finds the member by it, not by the account's
    # own email, once it is set. And the IdP's immutable subject (a persistent NameID or an immutable-id attribute
    # such as Okta's user id or Entra's object id), which SSO tries first.
    directory_email = models.CharField(max_length=254, blank=True)
    saml_subject = models.CharField(max_length=255, blank=True)
    # Field ownership (workspaces/ownership.py): the last role change came from the IdP (SCIM role, SAML role
    # attribute or group sync), so the portal may not change it; and the instant an Owner detached the member from
    # the IdP, after which the portal owns every field.
    role_from_idp = models.BooleanField(default=False)
    detached_at = models.DateTimeField(null=True, blank=True)
    # Consent (docs/architecture.md, "Consent and ownership"): set when this workspace attached an account that existed
    # before (it has a password or a membership elsewhere) without proving its email domain. Until the person accepts
    # the invitation sent to them, the membership opens nothing and shows nothing of the account.
    consent_pending_since = models.DateTimeField(null=True, blank=True)
    given_name = models.CharField(max_length=150, blank=True)
    family_name = models.CharField(max_length=150, blank=True)
    display_name = models.CharField(max_length=255, blank=True)
    # Other SCIM profile attributes (emails, title, enterprise extension...) as the IdP sent them.
    profile = models.JSONField(default=dict, blank=True)
    # Repository or environment names this member may reach (SCIM custom attribute); empty = no limit.
    allowed_environments = models.JSONField(default=list, blank=True)
    # Any session grant or credential issued before this instant is dead (revocation across all nodes).
    credentials_valid_after = models.DateTimeField(null=True, blank=True)
    deactivated_at = models.DateTimeField(null=True, blank=True)
    last_login_at = models.DateTimeField(null=True, blank=True)
    # The last sign-in through this workspace's IdP (a verified SAML login; never a password or break-glass): what
    # authorises the member's personal API keys while the workspace enforces SAML-only.
    last_sso_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    # SCIM meta.version: bumped by every service change.
    version = models.PositiveIntegerField(default=1)

    class Meta:
        ordering = ["user__email"]
        constraints = [
            models.UniqueConstraint(fields=["workspace", "user"], name="membership_unique_user_per_workspace"),
            models.UniqueConstraint(
                "workspace",
                Lower("scim_username"),
                condition=~Q(scim_username=""),
                name="membership_scim_username_ci_unique",
            ),
            models.UniqueConstraint(
                fields=["workspace", "saml_subject"], condition=~Q(saml_subject=""),
                name="membership_saml_subject_unique",
            ),
        ]
        indexes = [
            models.Index("workspace", Lower("scim_username"), name="membership_ws_username_ci"),
            models.Index(fields=["workspace", "external_id"], name="membership_ws_external_id"),
            models.Index("workspace", Lower("directory_email"), name="membership_ws_directory_email"),
            models.Index(fields=["workspace", "role", "is_active"], name="membership_ws_role_active"),
        ]

    def __str__(self) -> str:
        return f"{self.user.email} in {self.workspace.slug}"

    @property
    def consent_pending(self) -> bool:
        """The person has not yet accepted this workspace's invitation: no access, nothing of the account shown."""
        return self.consent_pending_since is not None

    @property
    def name(self) -> str:
        full = " ".join(p for p in (self.given_name, self.family_name) if p)
        return self.display_name or full or self.user.full_name or self.user.email

    @property
    def email(self) -> str:
        return self.user.email

    @property
    def managed_by(self) -> str:
        """``SCIM`` or ``SAML`` when the workspace's IdP manages this member, else ``""`` (added in the portal, or
        detached by an Owner). What that means for each field: ``workspaces.ownership``."""
        if self.detached_at is not None:
            return ""
        if self.scim_username:
            return "SCIM"
        return "SAML" if self.saml_subject else ""


class Team(models.Model):
    """A group of members: the SCIM Group resource and the target of SAML group sync."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="teams")
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    external_id = models.CharField(max_length=255, blank=True)
    # Created by a SCIM group push: the IdP owns its member list (workspaces/ownership.py, ``team_owned``).
    scim_managed = models.BooleanField(default=False, db_default=False)
    members: models.ManyToManyField[Membership, TeamMembership] = models.ManyToManyField(
        Membership, through="TeamMembership", related_name="teams"
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    version = models.PositiveIntegerField(default=1)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint("workspace", Lower("name"), name="team_name_ci_unique_per_workspace"),
        ]
        indexes = [models.Index(fields=["workspace", "external_id"], name="team_ws_external_id")]

    def __str__(self) -> str:
        return self.name


class TeamSource(models.TextChoices):
    MANUAL = "manual", "Added by an admin"
    SCIM = "scim", "Pushed by SCIM"
    SAML = "saml", "SAML group sync"


class TeamMembership(models.Model):
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="team_memberships")
    membership = models.ForeignKey(Membership, on_delete=models.CASCADE, related_name="team_memberships")
    source = models.CharField(max_length=8, choices=TeamSource.choices, default=TeamSource.MANUAL)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["team", "membership"], name="team_membership_unique")]

    def __str__(self) -> str:
        return f"{self.membership_id} in team {self.team_id}"


class Repository(models.Model):
    """A package repository an artifact service asks about."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="repositories")
    name = models.CharField(max_length=100)
    description = models.CharField(max_length=500, blank=True)
    # Environment this repository belongs to (for example "production"); matched by allowed environments.
    environment = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]
        verbose_name_plural = "repositories"
        constraints = [
            models.UniqueConstraint("workspace", Lower("name"), name="repository_name_ci_unique_per_workspace"),
        ]

    def __str__(self) -> str:
        return self.name


class Permission(models.TextChoices):
    READ = "read", "Read"
    WRITE = "write", "Write"
    ADMIN = "admin", "Admin"


PERMISSION_RANK = {Permission.READ: 1, Permission.WRITE: 2, Permission.ADMIN: 3}


class RepositoryGrant(models.Model):
    """A team or a single member gets read, write or admin on one repository."""

    repository = models.ForeignKey(Repository, on_delete=models.CASCADE, related_name="grants")
    team = models.ForeignKey(Team, null=True, blank=True, on_delete=models.CASCADE, related_name="grants")
    membership = models.ForeignKey(
        Membership, null=True, blank=True, on_delete=models.CASCADE, related_name="grants"
    )
    permission = models.CharField(max_length=8, choices=Permission.choices, default=Permission.READ)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=(Q(team__isnull=False) & Q(membership__isnull=True))
                | (Q(team__isnull=True) & Q(membership__isnull=False)),
                name="grant_exactly_one_grantee",
            ),
            models.UniqueConstraint(fields=["repository", "team"], condition=Q(team__isnull=False), name="grant_unique_team"),
            models.UniqueConstraint(
                fields=["repository", "membership"], condition=Q(membership__isnull=False), name="grant_unique_member"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.permission} on {self.repository_id}"

    @property
    def grantee_label(self) -> str:
        # A grant has exactly one grantee (a check constraint): a team, else a member.
        return f"team {self.team.name}" if self.team_id else self.membership.email  # type: ignore[union-attr]


class ApiKey(models.Model):
    """A personal key (acts as its member in one workspace) or a workspace service key with scopes.

    Only a SHA-256 of the key is stored: keys are 256-bit random values, so a fast hash is
    enough (no dictionary to attack) and lookups stay cheap. The prefix is shown to humans.
    """

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="api_keys")
    membership = models.ForeignKey(
        Membership, null=True, blank=True, on_delete=models.CASCADE, related_name="api_keys",
        help_text="Empty for a workspace service key.",
    )
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=16, unique=True)
    key_hash = models.CharField(max_length=64, unique=True)
    scopes = models.JSONField(default=list, blank=True)
    created_by = models.ForeignKey(User, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_service_key(self) -> bool:
        return self.membership_id is None

    @property
    def is_live(self) -> bool:
        now = timezone.now()
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > now)


# ----------------------------------------------------------------------------- invitations


class Invitation(models.Model):
    """An emailed link that lets one person join one workspace (``membership``, created when they were invited).

    Only a SHA-256 of the token is stored (``workspaces.credentials.hash_secret``); the link is sent once. A link
    works until it is accepted, revoked, replaced by a resend, or ``expires_at``.
    """

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="invitations")
    membership = models.ForeignKey(Membership, on_delete=models.CASCADE, related_name="invitations")
    email = models.CharField(max_length=254)
    token_hash = models.CharField(max_length=64, unique=True)
    invited_by = models.CharField(max_length=255, blank=True, help_text="The audit label of who sent it.")
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    accepted_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["workspace", "accepted_at", "revoked_at"], name="invitation_ws_open")]

    def __str__(self) -> str:
        return f"invitation of {self.email} to {self.workspace_id}"

    @property
    def is_open(self) -> bool:
        """Neither accepted nor revoked (it may still have expired)."""
        return self.accepted_at is None and self.revoked_at is None


# ----------------------------------------------------------------------------- deprovisioning


class DeprovisionStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"


class DeprovisionCause(models.TextChoices):
    DEACTIVATED = "deactivated", "Member deactivated"
    REMOVED = "removed", "Member removed"
    ACCOUNT_DISABLED = "account_disabled", "Account disabled by support"


class DeprovisionJob(models.Model):
    """Outbox row: revoke what one person held in one workspace.

    Written in the same transaction as the deactivation and its audit event, so a committed
    deactivation always has its job, whatever happens to Redis or a worker afterwards. Credentials
    issued before ``created_at`` are revoked; anything issued later (after a reactivation) is not.
    """

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="deprovision_jobs")
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="+")
    # Kept when the membership is removed later (the job still has sessions to clean up).
    membership = models.ForeignKey(
        Membership, null=True, blank=True, on_delete=models.SET_NULL, related_name="deprovision_jobs"
    )
    member_label = models.CharField(max_length=254)
    cause = models.CharField(max_length=20, choices=DeprovisionCause.choices)
    status = models.CharField(max_length=8, choices=DeprovisionStatus.choices, default=DeprovisionStatus.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    # What was revoked: {"sessions": n, "api_keys": n, "oauth_tokens": n}.
    result = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    # When the sweeper should (re-)enqueue this job if it is still not done.
    due_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["status", "due_at"], name="deprovjob_status_due"),
            models.Index(fields=["workspace", "status", "created_at"], name="deprovjob_ws_status"),
        ]

    def __str__(self) -> str:
        return f"deprovision {self.member_label} in {self.workspace_id} ({self.status})"


class UserSession(models.Model):
    """Which database sessions belong to which user, written at login.

    Lets revocation load just one person's sessions (on every web node, since sessions live in
    the database) instead of decoding the whole session table.
    """

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="+")
    session_key = models.CharField(max_length=40)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "session_key"], name="usersession_unique")]
        indexes = [models.Index(fields=["session_key"], name="usersession_key")]

    def __str__(self) -> str:
        return f"session of user {self.user_id}"


class RoleMapping(models.Model):
    """One role value the workspace's IdP sends (Cloudinary's ``admin``, a customer's ``Engineering Lead``) ->
    a Gatehouse role. Several values may map to one role; values match case-insensitively."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="role_mappings")
    value = models.CharField(max_length=100, help_text="As the IdP sends it.")
    value_key = models.CharField(max_length=100, editable=False, help_text="The value case-folded: what is matched.")
    role = models.CharField(max_length=16, choices=Role.choices)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["value_key"]
        constraints = [
            models.UniqueConstraint(fields=["workspace", "value_key"], name="role_mapping_value_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.value} -> {self.role}"


class DomainClaim(models.Model):
    """A workspace's claim to an email domain, proven by a DNS TXT record (docs/saml.md, "Verified domains").

    Several workspaces may claim one domain while pending; at most one holds it verified. Only a verified claim
    routes ``/login/`` discovery and lets the workspace's IdP move an account's email into the domain (the rule:
    ``workspaces.domains.email_domain_verified``). ``domain`` is stored normalised (lower case, IDNA A-labels),
    which the check constraint guarantees, so a plain index serves the lookups.
    """

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="domain_claims")
    domain = models.CharField(max_length=253)
    # Random, shown in the TXT value: gatehouse-verification=<token> at _gatehouse-challenge.<domain>.
    token = models.CharField(max_length=64)
    created_at = models.DateTimeField(default=timezone.now)
    verified_at = models.DateTimeField(null=True, blank=True)
    last_checked_at = models.DateTimeField(null=True, blank=True)
    # Why the last check failed ("" after a success): what the page shows.
    last_error = models.CharField(max_length=300, blank=True)
    # A pending claim is deleted (audited domain.expired) after this; None while verified.
    expires_at = models.DateTimeField(null=True, blank=True)
    # Consecutive checks of a verified claim that found no record (DNS server errors do not count).
    failures = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["domain"]
        constraints = [
            models.UniqueConstraint(fields=["workspace", "domain"], name="domain_claim_workspace_unique"),
            models.UniqueConstraint(
                fields=["domain"], condition=Q(verified_at__isnull=False), name="domain_claim_verified_unique"
            ),
            models.CheckConstraint(condition=Q(domain=Lower("domain")), name="domain_claim_domain_lower"),
        ]
        indexes = [models.Index(fields=["expires_at"], name="domain_claim_expires")]

    def __str__(self) -> str:
        return self.domain

    @property
    def is_verified(self) -> bool:
        return self.verified_at is not None


# ----------------------------------------------------------------------------- access reviews


class ReviewScope(models.TextChoices):
    WORKSPACE = "workspace", "Whole workspace"
    TEAM = "team", "One team"
    REPOSITORY = "repository", "One repository"


class ReviewStatus(models.TextChoices):
    OPEN = "open", "Open"
    COMPLETED = "completed", "Completed"


class ReviewDecision(models.TextChoices):
    UNDECIDED = "", "Undecided"
    KEEP = "keep", "Keep"
    REVOKE = "revoke", "Revoke"


class ReviewOutcome(models.TextChoices):
    PENDING = "", "Not applied yet"
    KEPT = "kept", "Kept"
    REVOKED = "revoked", "Revoked"
    NOT_HELD = "not_held", "No longer held"
    REFUSED = "refused", "Revocation refused"


class AccessReview(models.Model):
    """One access review of a workspace (docs/access-reviews.md): a snapshot of the grants in scope, each decided
    keep or revoke, then completed (revocations applied through ``workspaces.services``) and exported as evidence.

    The scope's team or repository may be deleted later: ``scope_label`` keeps its name for the record."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="access_reviews")
    name = models.CharField(max_length=200)
    scope_kind = models.CharField(max_length=10, choices=ReviewScope.choices, default=ReviewScope.WORKSPACE)
    scope_team = models.ForeignKey(Team, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    scope_repository = models.ForeignKey(
        Repository, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    scope_label = models.CharField(max_length=300, blank=True)
    status = models.CharField(max_length=10, choices=ReviewStatus.choices, default=ReviewStatus.OPEN)
    created_by = models.ForeignKey(User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_by_label = models.CharField(max_length=255, blank=True, help_text="The audit label of who started it.")
    created_at = models.DateTimeField(default=timezone.now)
    completed_at = models.DateTimeField(null=True, blank=True)
    completed_by = models.CharField(max_length=255, blank=True, help_text="The audit label of who completed it.")
    # SHA-256 of the JSON export at completion, also in the access_review.completed event: the file handed to an
    # auditor can be checked against the log.
    export_sha256 = models.CharField(max_length=64, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["workspace", "status", "created_at"], name="accessreview_ws_status")]

    def __str__(self) -> str:
        return f"access review {self.name} in {self.workspace_id}"

    @property
    def is_open(self) -> bool:
        return self.status == ReviewStatus.OPEN


class AccessReviewItem(models.Model):
    """One grant as it was when the review started (a snapshot: later changes do not alter the evidence), the
    reviewer's decision, and what completing the review did with it."""

    review = models.ForeignKey(AccessReview, on_delete=models.CASCADE, related_name="items")
    entitlement = models.CharField(max_length=64)
    kind = models.CharField(max_length=16)
    label = models.CharField(max_length=300)
    principal_type = models.CharField(max_length=8)  # "member" or "team"
    principal_id = models.BigIntegerField()
    principal_label = models.CharField(max_length=254)
    source = models.CharField(max_length=16)
    idp_owned = models.TextField(blank=True, help_text="Why the portal may not revoke it, when the IdP owns it.")
    decision = models.CharField(max_length=8, choices=ReviewDecision.choices, blank=True, default="")
    decided_by_label = models.CharField(max_length=255, blank=True)
    decided_at = models.DateTimeField(null=True, blank=True)
    note = models.TextField(blank=True)
    outcome = models.CharField(max_length=8, choices=ReviewOutcome.choices, blank=True, default="")
    outcome_detail = models.TextField(blank=True)

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["review", "id"], name="accessreviewitem_review_id")]

    def __str__(self) -> str:
        return f"{self.entitlement} of {self.principal_type} {self.principal_id}"
