"""Bench-only URLs: the product's URLs plus two comparison views.

- ``bench/floor/<pk>/``: a bare DRF view doing one indexed SELECT (primary key). The floor.
- ``bench/decision-only``: the access check's authentication and decision without its audit write,
  to show what the audit insert costs.
"""

from __future__ import annotations

from django.urls import path
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from config.urls import urlpatterns as product_urlpatterns
from workspaces.api.permissions import KeyAllows
from workspaces.api.views import AccessCheck
from workspaces.models import Membership
from workspaces.package_access import UNREAD, package_access_decision


class Floor(APIView):
    schema = None  # not part of the product's OpenAPI schema
    authentication_classes: list = []
    permission_classes = [AllowAny]

    def get(self, request: Request, pk: int) -> Response:
        return Response(Membership.objects.filter(pk=pk).values("id", "role", "is_active").first())


class DecisionOnly(APIView):
    # The check's own authentication: the key lookup that also reads the decision's inputs.
    authentication_classes = AccessCheck.authentication_classes
    schema = None
    permission_classes = [KeyAllows]

    def post(self, request: Request) -> Response:
        principal, name = request.auth, request.data["repository"]
        d = package_access_decision(
            membership=principal.membership, repository_name=name, action=request.data["action"],
            row=principal.decision_row if principal.decision_repository == name else UNREAD,
        )
        return Response({"allowed": d.allowed, "reason": d.reason})


urlpatterns = [
    path("bench/floor/<int:pk>/", Floor.as_view()),
    path("bench/decision-only", DecisionOnly.as_view()),
    *product_urlpatterns,
]
