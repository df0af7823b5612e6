"""The portal's URLs plus ``/bench/floor/<id>/``: a bare DRF view doing one indexed SELECT (the floor)."""

from django.urls import path
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from config.urls import urlpatterns as portal_urlpatterns
from workspaces.models import Membership


class FloorView(APIView):
    """One primary-key SELECT rendered as JSON: the cheapest useful request this stack can serve."""

    authentication_classes: list = []
    permission_classes = [AllowAny]

    def get(self, request, pk: int) -> Response:
        row = Membership.objects.filter(pk=pk).values("id", "scim_username", "is_active").first()
        return Response(row or {})


urlpatterns = [path("bench/floor/<int:pk>/", FloorView.as_view()), *portal_urlpatterns]
