from __future__ import annotations

from django import forms

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
