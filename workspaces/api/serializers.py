"""Shapes of the connector API. Read-only renderings of selector results; no logic here."""

from __future__ import annotations

from typing import Any

from django.core.validators import RegexValidator
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from workspaces.entitlements import EntitlementKind
from workspaces.models import (
    Membership,
    Repository,
    RepositoryGrant,
    Team,
    TeamMembership,
    Visibility,
    Workspace,
)
from workspaces.package_access import PackageAction
from workspaces.roles import Role
from workspaces.selectors import member_last_login, member_two_factor


class ErrorSerializer(serializers.Serializer):
    detail = serializers.CharField()
    code = serializers.CharField(
        required=False,
        help_text="A refused change's reason as a word: forbidden, idp_owned (the identity provider owns it: see "
                  "owner), last_owner, not_found, uniqueness, invalid.",
    )
    owner = serializers.CharField(
        required=False, help_text="idp_owned only: what owns it (SCIM or SAML)."
    )
    errors = serializers.DictField(  # type: ignore[assignment]  # the error document's field, shadows Serializer.errors; schema only
        child=serializers.ListField(child=serializers.CharField()), required=False,
        help_text="400 only: messages per field (query parameter or body field).",
    )


class PolicySerializer(serializers.Serializer):
    saml_only = serializers.BooleanField(help_text="Password logins are refused; members sign in through the IdP.")
    scim_enabled = serializers.BooleanField()
    jit_provisioning = serializers.BooleanField()
    default_role = serializers.ChoiceField(choices=Role.choices)
    require_2fa = serializers.BooleanField(help_text="Password logins need a second factor (TOTP).")
    api_may_override_idp = serializers.BooleanField(
        help_text="Whether this API may change what the identity provider owns (a role it set, a team it pushes or "
                  "syncs). False (default): such a change answers 403 with code idp_owned.",
    )
    api_key_sso_window_seconds = serializers.IntegerField(
        help_text="While saml_only is true, a personal API key works for this many seconds after its member's last "
                  "sign-in through the workspace's IdP; then it is refused (403) until the member signs in through "
                  "SSO again. Service keys are not bound to anyone's sign-in.",
    )


class CallingKeySerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=["personal", "service"], help_text="personal: acts as its member; "
                                   "service: the workspace's own key, limited to its scopes.")
    prefix = serializers.CharField(help_text="The key's public prefix (gh_<prefix>_...).")
    acts_as = serializers.EmailField(allow_null=True, help_text="Personal keys: the member's email. Service keys: null.")
    sso_authorised_until = serializers.DateTimeField(
        allow_null=True,
        help_text="Personal keys in a SAML-only workspace: when the member's last SSO sign-in stops authorising the "
                  "key (sign in through SSO again before then to extend it). Null otherwise.",
    )


class WorkspaceSerializer(serializers.ModelSerializer):
    policy = PolicySerializer(read_only=True)
    key = serializers.SerializerMethodField(help_text="The API key making this request.")

    class Meta:
        model = Workspace
        fields = ["slug", "name", "policy", "created_at", "key"]
        read_only_fields = fields

    @extend_schema_field(CallingKeySerializer)
    def get_key(self, obj: Workspace) -> dict[str, Any]:
        return CallingKeySerializer(self.context["key"]).data


class TeamRefSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()


class MemberRefSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    email = serializers.EmailField()
    name = serializers.CharField()
    active = serializers.BooleanField(source="is_active")


class MemberSerializer(serializers.ModelSerializer):
    email = serializers.EmailField(source="user.email", read_only=True)
    name = serializers.CharField(read_only=True)
    active = serializers.BooleanField(source="is_active", read_only=True)
    two_factor_enabled = serializers.SerializerMethodField(
        help_text="Whether the person's account has a second factor; null (unknown) while the member has not yet "
                  "accepted the workspace's invitation (consent pending): the workspace sees nothing of the account "
                  "until then.",
    )
    last_login = serializers.SerializerMethodField(
        help_text="The last sign-in to this workspace; null when never, and while consent is pending.",
    )
    consent_pending = serializers.SerializerMethodField(
        help_text="The member was added with an existing account and has not yet accepted the invitation; until "
                  "then the membership opens nothing.",
    )
    teams = serializers.SerializerMethodField()

    class Meta:
        model = Membership
        fields = [
            "id", "email", "name", "role", "visibility", "two_factor_enabled", "active", "last_login", "consent_pending",
            "external_id", "created_at", "deactivated_at", "teams",
        ]
        read_only_fields = fields

    @extend_schema_field(serializers.BooleanField(allow_null=True))
    def get_two_factor_enabled(self, obj: Membership) -> bool | None:
        return member_two_factor(obj)

    @extend_schema_field(serializers.DateTimeField(allow_null=True))
    def get_last_login(self, obj: Membership) -> str | None:
        value = member_last_login(obj)
        return serializers.DateTimeField().to_representation(value) if value is not None else None

    @extend_schema_field(serializers.BooleanField())
    def get_consent_pending(self, obj: Membership) -> bool:
        return obj.consent_pending

    @extend_schema_field(TeamRefSerializer(many=True))
    def get_teams(self, obj: Membership) -> list[dict[str, Any]]:
        links: list[TeamMembership] = getattr(obj, "visible_teams", [])
        return [{"id": link.team_id, "name": link.team.name} for link in links]


class TeamSerializer(serializers.ModelSerializer):
    members = serializers.SerializerMethodField()

    class Meta:
        model = Team
        fields = ["id", "name", "description", "external_id", "created_at", "members"]
        read_only_fields = fields

    @extend_schema_field(MemberRefSerializer(many=True))
    def get_members(self, obj: Team) -> list[dict[str, Any]]:
        links: list[TeamMembership] = getattr(obj, "visible_members", [])
        return MemberRefSerializer([link.membership for link in links], many=True).data  # type: ignore[return-value]  # many=True: a list


class GrantSerializer(serializers.ModelSerializer):
    team = serializers.SerializerMethodField()
    member = serializers.SerializerMethodField()

    class Meta:
        model = RepositoryGrant
        fields = ["id", "permission", "team", "member"]
        read_only_fields = fields

    @extend_schema_field(TeamRefSerializer(allow_null=True))
    def get_team(self, obj: RepositoryGrant) -> dict[str, Any] | None:
        return {"id": obj.team_id, "name": obj.team.name} if obj.team_id else None  # type: ignore[union-attr]  # team_id is set

    @extend_schema_field(MemberRefSerializer(allow_null=True))
    def get_member(self, obj: RepositoryGrant) -> dict[str, Any] | None:
        return MemberRefSerializer(obj.membership).data if obj.membership_id else None


class RepositorySerializer(serializers.ModelSerializer):
    grants = GrantSerializer(source="visible_grants", many=True, read_only=True)

    class Meta:
        model = Repository
        fields = ["id", "name", "description", "environment", "created_at", "grants"]
        read_only_fields = fields


# ----------------------------------------------------------------------------- query filters


class _OptionalBoolean(serializers.BooleanField):
    """A boolean query filter: left out means no filter (DRF's BooleanField reads a missing form value as
    False)."""

    default_empty_html = serializers.empty


class MemberFilterSerializer(serializers.Serializer):
    role = serializers.ChoiceField(choices=Role.choices, required=False, allow_blank=True, help_text="Only members with this role; empty: no filter.")
    active = _OptionalBoolean(required=False, help_text="true: active members; false: deactivated ones; leave out for both.")
    email = serializers.CharField(required=False, allow_blank=True, max_length=254, help_text="Exact email, case-insensitive; empty: no filter.")
    visibility = serializers.ChoiceField(choices=Visibility.choices, required=False, allow_blank=True, help_text="public or private; empty: no filter.")
    team = serializers.IntegerField(required=False, min_value=1, help_text="Team id: only its members.")


class TeamFilterSerializer(serializers.Serializer):
    name = serializers.CharField(required=False, allow_blank=True, max_length=200, help_text="Exact team name, case-insensitive; empty: no filter.")
    member = serializers.IntegerField(required=False, min_value=1, help_text="Member id: only teams it belongs to.")


class RepositoryFilterSerializer(serializers.Serializer):
    name = serializers.CharField(required=False, allow_blank=True, max_length=100, help_text="Exact repository name, case-insensitive; empty: no filter.")
    environment = serializers.CharField(required=False, allow_blank=True, max_length=64, help_text="Exact environment; empty: no filter.")


# ----------------------------------------------------------------------------- access check


class AccessCheckRequestSerializer(serializers.Serializer):
    repository = serializers.CharField(
        max_length=100,
        # Surrounding whitespace is trimmed, so a name must hold a visible character (and no NUL): the schema
        # says so, instead of accepting "\r" as a name and then refusing it as blank.
        validators=[RegexValidator(r"^[^\x00]*[^\s\x00][^\x00]*$", "Name a repository.")],
        help_text="Repository name (case-insensitive).",
    )
    action = serializers.ChoiceField(choices=[(a, a) for a in PackageAction.CHOICES])
    member = serializers.EmailField(
        required=False,
        help_text="Service keys (scope access:check) name the member to check by email. Personal keys check their own member and must omit it.",
    )


class AccessCheckResponseSerializer(serializers.Serializer):
    allowed = serializers.BooleanField()
    reason = serializers.CharField()
    repository = serializers.CharField(allow_null=True, help_text="The repository's name, or null when none matched.")
    action = serializers.CharField()
    permission = serializers.CharField(allow_blank=True, help_text="The member's effective permission ('' when none).")


class AuditActorSerializer(serializers.Serializer):
    kind = serializers.CharField(help_text="member, system, scim, api_key, anonymous ...")
    id = serializers.CharField(allow_null=True)
    label = serializers.CharField()  # type: ignore[assignment]  # the event field, shadows Field.label; schema only
    auth_method = serializers.CharField(help_text="How the actor signed in: password, saml, break_glass, scim, api_key ...")


class AuditTargetSerializer(serializers.Serializer):
    type = serializers.CharField()
    id = serializers.CharField(allow_null=True)
    label = serializers.CharField()  # type: ignore[assignment]  # the event field, shadows Field.label; schema only


class AuditEventSerializer(serializers.Serializer):
    """The public shape of an event (also the JSON Lines export and what SIEM sinks receive); docs/audit-events.md."""

    id = serializers.IntegerField()
    seq = serializers.IntegerField(help_text="Position in the workspace's hash chain (gapless, commit order).")
    created_at = serializers.DateTimeField()
    workspace_id = serializers.IntegerField()
    action = serializers.CharField(help_text="For example member.role_changed; the catalogue is docs/audit-events.md.")
    actor = AuditActorSerializer()
    target = AuditTargetSerializer()
    ip = serializers.CharField(allow_null=True)
    user_agent = serializers.CharField()
    request_id = serializers.CharField()
    details = serializers.DictField()
    prev_hash = serializers.CharField()
    hash = serializers.CharField()


class AuditEventPageSerializer(serializers.Serializer):
    results = AuditEventSerializer(many=True)
    next_cursor = serializers.CharField(
        allow_null=True, required=False, help_text="With cursor paging: pass as cursor for the next (older) page; null at the end."
    )
    next_after_seq = serializers.IntegerField(
        required=False, help_text="With after_seq paging: pass as after_seq for the next (newer) events."
    )


# ----------------------------------------------------------------------------- governance

MAX_ID = 2**63 - 1
# What an entitlement id looks like (workspaces.entitlements), so the schema itself refuses other strings.
ENTITLEMENT_PATTERN = (r"^(role:(owner|manager|member|collaborator)|team:[1-9][0-9]{0,17}"
                       r"|repository:[1-9][0-9]{0,17}:(read|write|admin))$")


class StrictCharField(serializers.CharField):
    """A JSON string, never a number or boolean coerced to one: what the schema says is what is accepted."""

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictIntegerField(serializers.IntegerField):
    """A JSON integer, never a string of digits or a float."""

    def to_internal_value(self, data: Any) -> int:
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid")
        return super().to_internal_value(data)


class EntitlementIdField(serializers.RegexField, StrictCharField):
    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("help_text", ENTITLEMENT_ID_HELP)
        kwargs.setdefault("error_messages", {"invalid": "Unknown entitlement. " + ENTITLEMENT_ID_HELP.replace(
            "An entitlement id: ", "Use ")})
        super().__init__(ENTITLEMENT_PATTERN, max_length=120, **kwargs)
ENTITLEMENT_ID_HELP = (
    "An entitlement id: role:<owner|manager|member|collaborator>, team:<team id> or "
    "repository:<repository id>:<read|write|admin>."
)


class EntitlementFilterSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=EntitlementKind.choices, required=False, allow_blank=True,
                                   help_text="Only this kind; empty: all kinds.")


class EntitlementResourceSerializer(serializers.Serializer):
    type = serializers.ChoiceField(choices=["workspace", "team", "repository"])
    id = serializers.IntegerField()
    name = serializers.CharField()


class EntitlementSerializer(serializers.Serializer):
    id = serializers.CharField(help_text=ENTITLEMENT_ID_HELP + " Stable: ids, never names.")
    kind = serializers.ChoiceField(choices=EntitlementKind.choices)
    value = serializers.CharField(help_text="The role, 'member' for a team, or the repository permission.")
    label = serializers.CharField(help_text="For people: 'Manager', 'Member of team Platform', 'Write on app'.")  # type: ignore[assignment]  # a field named like a Field attribute; DRF collects it
    resource = EntitlementResourceSerializer()
    idp_owned = serializers.CharField(
        allow_null=True,
        help_text="Set when only the identity provider adds holders (a team a SCIM group push created, or one SAML "
                  "group sync maps): why, and what to do instead. Null otherwise.",
    )


class GrantFilterSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=EntitlementKind.choices, required=False, allow_blank=True,
                                   help_text="Only grants of this kind; empty: all kinds.")
    member = serializers.IntegerField(required=False, help_text="Member id: only grants it holds.", min_value=1, max_value=MAX_ID)
    team = serializers.IntegerField(required=False, help_text="Team id: only grants it holds (repository "
                                    "permissions; a team's members are listed under entitlement=team:<id>).", min_value=1, max_value=MAX_ID)
    entitlement = serializers.CharField(required=False, allow_blank=True, max_length=120,
                                        help_text="Only holders of this entitlement (role:..., team:<id> or "
                                                  "repository:<id>:<permission>); empty: no filter.")


class PrincipalSerializer(serializers.Serializer):
    type = serializers.ChoiceField(choices=["member", "team"])
    id = serializers.IntegerField()
    label = serializers.CharField(help_text="The member's email, or the team's name.")  # type: ignore[assignment]  # a field named like a Field attribute; DRF collects it
    active = serializers.BooleanField(allow_null=True, help_text="Members: whether the membership opens the "
                                      "workspace (false when deactivated or pending consent). Null for a team.")


class EntitlementGrantSerializer(serializers.Serializer):
    id = serializers.CharField(help_text="<entitlement id>/<member|team>:<id>")
    entitlement = serializers.CharField(help_text=ENTITLEMENT_ID_HELP)
    kind = serializers.ChoiceField(choices=EntitlementKind.choices)
    label = serializers.CharField()  # type: ignore[assignment]  # a field named like a Field attribute; DRF collects it
    principal = PrincipalSerializer()
    source = serializers.ChoiceField(  # type: ignore[assignment]
        choices=["manual", "scim_group", "saml_group_sync", "idp_role"],
        help_text="manual (portal, API, manage.py), scim_group (pushed by a SCIM group), saml_group_sync, idp_role "
                  "(a role the identity provider set: SCIM role, SAML role attribute or group).",
    )
    idp_owned = serializers.CharField(
        allow_null=True,
        help_text="Set when the identity provider owns this grant, so revoking it here is refused (unless the "
                  "workspace lets the API override the IdP): why, and what to do instead. Null otherwise.",
    )
    granted_at = serializers.DateTimeField(allow_null=True, help_text="When it was granted; null for roles.")


class GrantRequestSerializer(serializers.Serializer):
    entitlement = EntitlementIdField()
    member = StrictIntegerField(required=False, help_text="The member to grant to or revoke from.", min_value=1,
                                max_value=MAX_ID)
    team = StrictIntegerField(required=False, help_text="Or a team (repository permissions only).", min_value=1,
                              max_value=MAX_ID)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if ("member" in attrs) == ("team" in attrs):
            raise serializers.ValidationError({"member": ["Give exactly one of member or team."]})
        return attrs


class GrantResultSerializer(serializers.Serializer):
    changed = serializers.BooleanField(help_text="false: the grant was already held (or, revoking, not held): "
                                       "nothing changed and nothing was recorded.")
    grant = EntitlementGrantSerializer(allow_null=True, help_text="The grant as it now stands; null after a revocation.")


class MemberStatusRequestSerializer(serializers.Serializer):
    reason = StrictCharField(required=False, allow_blank=True, max_length=500,
                                   help_text="Recorded in the audit event (deactivation).")


class MemberStatusResultSerializer(serializers.Serializer):
    changed = serializers.BooleanField(help_text="false: the member already was in that state; nothing recorded.")
    member = MemberSerializer()
