"""drf-spectacular extension: describes API key authentication in the OpenAPI schema (both headers)."""

from __future__ import annotations

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class ApiKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "workspaces.api.authentication.ApiKeyAuthentication"
    match_subclasses = True  # the access check authenticates with a subclass (it also reads its decision)
    name = ["bearerApiKey", "headerApiKey"]

    def get_security_definition(self, auto_schema):  # noqa: ANN001, ANN201
        return [
            {"type": "http", "scheme": "bearer", "bearerFormat": "gh_<prefix>_<secret>",
             "description": "Authorization: Bearer <API key>"},
            {"type": "apiKey", "in": "header", "name": "X-Api-Key", "description": "X-Api-Key: <API key>"},
        ]

    def get_security_requirement(self, auto_schema):  # noqa: ANN001, ANN201
        # Either header works: two alternatives (OR), not one requirement needing both (AND).
        return [{name: []} for name in self.name]
