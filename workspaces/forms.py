from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django import forms

from .models import Permission, Visibility
from .roles import ApiScope, Role


class LoginForm(forms.Form):
    email = forms.EmailField(widget=forms.EmailInput(attrs={"autofocus": True, "autocomplete": "username"}))
    password = forms.CharField(
        required=False, widget=forms.PasswordInput(attrs={"autocomplete": "current-password"})
    )


class RoleForm(forms.Form):
    role = forms.ChoiceField(choices=Role.choices)


class VisibilityForm(forms.Form):
    visibility = forms.ChoiceField(choices=Visibility.choices)


class AddMemberForm(forms.Form):
    email = forms.EmailField()
    full_name = forms.CharField(max_length=200, required=False)
    role = forms.ChoiceField(choices=Role.choices, initial=Role.MEMBER)


class MemberSearchForm(forms.Form):
    """The members page's search and filters (GET). Every field optional; an unknown choice is a field error."""

    q = forms.CharField(required=False, max_length=254, label="Search", help_text="Part of a name or email.")
    role = forms.ChoiceField(required=False, choices=[("", "Any role"), *Role.choices])
    status = forms.ChoiceField(
        required=False,
        choices=[("", "Any status"), ("active", "Active"), ("deactivated", "Deactivated"), ("invited", "Invited (pending)")],
    )
    two_factor = forms.ChoiceField(
        required=False, label="Two-factor", choices=[("", "Any"), ("on", "On"), ("off", "Off")]
    )
    source = forms.ChoiceField(
        required=False,
        choices=[("", "Any source"), ("scim", "SCIM (IdP-managed)"), ("saml", "SAML (IdP-managed)"), ("portal", "Portal")],
    )
    sso = forms.ChoiceField(
        required=False, label="SSO link", choices=[("", "Any"), ("linked", "Linked"), ("unlinked", "Not linked")]
    )


class TeamForm(forms.Form):
    name = forms.CharField(max_length=200)


class TeamMemberForm(forms.Form):
    member = forms.ChoiceField(choices=())

    def __init__(self, *args, members=(), **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["member"].choices = [(m.pk, f"{m.name} <{m.email}>") for m in members]  # type: ignore[attr-defined]  # a ChoiceField


class RepositoryForm(forms.Form):
    name = forms.CharField(max_length=100)
    environment = forms.CharField(max_length=64, required=False, help_text="For example: production, staging.")
    description = forms.CharField(max_length=500, required=False)


class GrantForm(forms.Form):
    grantee = forms.ChoiceField(choices=())
    permission = forms.ChoiceField(choices=Permission.choices)

    def __init__(self, *args, teams=(), members=(), **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["grantee"].choices = [(f"team:{t.pk}", f"Team: {t.name}") for t in teams] + [  # type: ignore[attr-defined]  # a ChoiceField
            (f"member:{m.pk}", f"Member: {m.email}") for m in members
        ]


class ApiKeyForm(forms.Form):
    name = forms.CharField(max_length=100, help_text="What the key is for, e.g. “CI pipeline”.")
    scopes = forms.MultipleChoiceField(
        choices=ApiScope.choices, required=False, widget=forms.CheckboxSelectMultiple,
        help_text="Service keys only: what the key may do (at least one). Personal keys act with your role.",
    )


def posted_id(data: Mapping[str, Any], name: str) -> int:
    """The row id a form posted under ``name``; 0 (matches no row, so the caller answers "No such ...") when it is
    missing or not a positive integer that fits the database's id column."""
    raw = str(data.get(name, "") or "").strip()  # QueryDict or dict
    if not raw.isdigit() or not raw.isascii() or len(raw) > 18:
        return 0
    return int(raw)


class SessionLifetimeForm(forms.Form):
    hours = forms.IntegerField(
        required=False, min_value=1, max_value=720, label="Sign-ins last at most (hours)",
        help_text="Empty: the portal's default. A shorter lifetime also ends older sign-ins at their next request.",
    )


class RoleMappingForm(forms.Form):
    value = forms.CharField(max_length=100, label="Value the IdP sends",
                            help_text="As in your IdP's SCIM role attribute, for example media_library_user. "
                                      "Matched without regard to case.")
    role = forms.ChoiceField(choices=Role.choices, label="Gatehouse role")


class ApiKeySsoWindowForm(forms.Form):
    hours = forms.IntegerField(
        min_value=1, max_value=2160, label="An SSO sign-in authorises personal API keys for (hours)",
        help_text="While SAML-only is on. 1 to 2160 hours (90 days); the default is 168 (7 days).",
    )


class InvitationPasswordForm(forms.Form):
    """A new account's first password, chosen on the invitation page (checked by Django's password validators in
    ``services.invitation_accept``)."""

    password = forms.CharField(label="Choose a password", strip=False,
                               widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}))
    password_again = forms.CharField(label="Type it again", strip=False,
                                     widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}))

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("password") and data.get("password") != data.get("password_again"):
            self.add_error("password_again", "The two passwords differ.")
        return data


class DomainClaimForm(forms.Form):
    domain = forms.CharField(
        max_length=253, label="Email domain",
        help_text="The part after the @ in your people's addresses, for example bigcorp.com. You prove it with a "
                  "DNS TXT record before it sends anyone to your SSO.",
    )
