"""Role mapping (Owners): which role values the workspace's IdP sends mean which Gatehouse role."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from . import services
from .access import WorkspaceRequest, workspace_view
from .exceptions import ServiceError
from .forms import RoleMappingForm
from .models import UnknownIdpRole
from .roles import Cap, Role


@require_http_methods(["GET", "POST"])
@workspace_view(need=Cap.SETTINGS_MANAGE)
def role_map(request: WorkspaceRequest, slug: str) -> HttpResponse:
    access = request.access
    workspace = access.workspace
    action = request.POST.get("action", "")
    form = RoleMappingForm(request.POST if action == "set" else None)
    if request.method == "POST":
        try:
            if action == "set":
                if form.is_valid():
                    value, role = form.cleaned_data["value"], form.cleaned_data["role"]
                    services.role_map_set(workspace=workspace, mappings={value: role}, actor=access.actor)
                    messages.success(request, f"Saved: {value!r} from the IdP now gives the {Role(role).label} role "
                                              "at the next SCIM request that sends it.")
                    return redirect("role_map", slug)
            elif action == "remove":
                value = request.POST.get("value", "")
                services.role_map_remove(workspace=workspace, values=[value], actor=access.actor)
                messages.success(request, f"Removed the mapping of {value!r}.")
                return redirect("role_map", slug)
            elif action == "unknown":
                services.role_map_set_unknown(workspace=workspace, policy=request.POST.get("unknown", ""),
                                              actor=access.actor)
                messages.success(request, "Saved what happens to values no mapping names.")
                return redirect("role_map", slug)
            elif action == "preset":
                preset = request.POST.get("preset", "")
                services.role_map_apply_preset(workspace=workspace, preset=preset, actor=access.actor)
                messages.success(request, f"Added the {preset} values. Change any of them below.")
                return redirect("role_map", slug)
            else:
                messages.error(request, "Unknown action: use the buttons on this page.")
        except ServiceError as exc:
            if action == "set":
                form.add_error(exc.field if exc.field in form.fields else None, exc.message)
            else:
                messages.error(request, exc.message)
    return render(request, "workspaces/role_map.html", {
        "workspace": workspace, "me": access.membership, "can": access.caps, "form": form,
        "mapping": services.role_map(workspace), "roles": Role, "unknown_choices": UnknownIdpRole.choices,
        "presets": {name: sorted(values.items()) for name, values in services.ROLE_MAP_PRESETS.items()},
    })
