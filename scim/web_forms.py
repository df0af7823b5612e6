from __future__ import annotations

from django import forms

from workspaces.roles import Role

from .services import OAuthGrant


class CredentialForm(forms.Form):
    KIND_CHOICES = [
        ("bearer", "Bearer token (Okta “HTTP Header”, Entra “Secret Token”)"),
        ("basic", "HTTP Basic key and secret"),
        ("oauth", "OAuth 2 client"),
    ]
    name = forms.CharField(max_length=100, help_text="Which identity provider uses it, e.g. “Okta production”.")
    kind = forms.ChoiceField(choices=KIND_CHOICES, initial="bearer")
    grant = forms.ChoiceField(choices=OAuthGrant.CHOICES, initial=OAuthGrant.AUTHORIZATION_CODE, required=False,
                              label="OAuth grant")
    redirect_uris = forms.CharField(
        required=False, label="OAuth redirect URIs",
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Authorization code only: the callback URL(s) your identity provider shows, space separated.",
    )


class ProvisioningPolicyForm(forms.Form):
    """What the workspace's IdP may do to members (``workspaces.services.workspace_update_policy``)."""

    jit_provisioning = forms.BooleanField(
        label="Create unknown people at their first SSO login (JIT)", required=False,
    )
    default_role = forms.ChoiceField(
        label="Default role", choices=Role.choices,
        help_text="What a person created by the IdP gets when it sends no role (SCIM and JIT), and what a removed "
                  "role returns to.",
    )
    scim_may_grant_owner = forms.BooleanField(
        label="The identity provider may grant Owner", required=False,
        help_text="Off (recommended): SCIM, the role attribute and group sync can never make an Owner, so a "
                  "compromised IdP cannot take the workspace over.",
    )
    api_may_override_idp = forms.BooleanField(
        label="Governance tools may override the identity provider", required=False,
        help_text="Off (recommended): the connector API cannot change what the IdP owns (a role it set, a team it "
                  "pushes or syncs), as in the portal. On: an access review's or governance tool's revocation wins "
                  "until the IdP next changes the same thing.",
    )


class RequestLogFilterForm(forms.Form):
    """The request log's filters (GET); every field optional."""

    outcome = forms.ChoiceField(required=False, choices=[
        ("", "Any outcome"), ("ok", "Succeeded"), ("failed", "Failed"), ("unauthenticated", "Refused credential (401)"),
    ])
    method = forms.ChoiceField(required=False, choices=[("", "Any method")] + [(m, m) for m in ("GET", "POST", "PUT", "PATCH", "DELETE")])
    status = forms.IntegerField(required=False, min_value=100, max_value=599, help_text="An exact HTTP status, e.g. 409.")
    path = forms.CharField(required=False, max_length=200, help_text="Part of the path: Users, Groups, or an id.")
