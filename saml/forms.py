from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, cast

from django import forms

from workspaces.roles import Role

if TYPE_CHECKING:
    from workspaces.models import Team


class SsoSettingsForm(forms.Form):
    metadata_xml = forms.CharField(
        label="IdP metadata XML", required=False, widget=forms.Textarea(attrs={"rows": 8, "spellcheck": "false"}),
        help_text="Okta: Applications > your app > Sign On > SAML Signing Certificates > Actions > View IdP metadata. "
                  "Leave empty to keep the current metadata.",
    )
    metadata_url = forms.URLField(label="or IdP metadata URL", required=False, max_length=500, assume_scheme="https",
                                  help_text="Refreshed daily; a failing refresh keeps the last good metadata.")
    email_attribute = forms.CharField(label="Email attribute", required=False, max_length=200,
                                      help_text="Empty: the NameID (Okta: Name ID format EmailAddress).")
    first_name_attribute = forms.CharField(label="First name attribute", required=False, max_length=200, initial="firstName")
    last_name_attribute = forms.CharField(label="Last name attribute", required=False, max_length=200, initial="lastName")
    groups_attribute = forms.CharField(label="Groups attribute", required=False, max_length=200, initial="groups")
    role_attribute = forms.CharField(
        label="Role attribute", required=False, max_length=200,
        help_text="Empty: roles come from group mappings only. Else its value sets the member's role at each login, "
                  "through Provisioning → Role mapping (Cloudinary: role).",
    )
    subject_attribute = forms.CharField(
        label="Immutable subject", required=False, max_length=200,
        help_text="What identifies a person for good, so renames keep the same member: empty (email only), NameID "
                  "(a persistent NameID), or an attribute name (Okta: an attribute mapped to user.id; Entra: "
                  "http://schemas.microsoft.com/identity/claims/objectidentifier). Changing it needs a new Test SSO.",
    )
    idp_initiated = forms.BooleanField(label="Allow IdP-initiated login (from the Okta dashboard)", required=False)
    clock_skew_seconds = forms.IntegerField(label="Clock skew allowance (seconds)", min_value=0, max_value=600, initial=120)


class GroupMappingForm(forms.Form):
    idp_group = forms.CharField(label="IdP group", max_length=255)
    team = forms.ChoiceField(label="Team", required=False)
    new_team_name = forms.CharField(label="or create a team named", required=False, max_length=200)
    role = forms.ChoiceField(label="Org role", required=False, choices=[("", "— no role —"), *Role.choices])
    priority = forms.IntegerField(label="Priority", initial=0, help_text="Higher wins when several groups give a role.")

    def __init__(self, *args: Any, teams: Iterable[Team] = (), **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        cast(forms.ChoiceField, self.fields["team"]).choices = [("", "— no team —"), *[(t.pk, t.name) for t in teams]]


class BreakGlassForm(forms.Form):
    email = forms.EmailField()
    password = forms.CharField(widget=forms.PasswordInput)
    code = forms.CharField(label="Recovery code", max_length=64)
