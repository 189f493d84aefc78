"""Where people land: the list of their workspaces, each with who pays, key health and
balance (the workspace's own home is ``views.workspace_home``)."""

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from workspaces.models import Membership

from .selectors import workspace_statuses


@login_required
def home(request: HttpRequest) -> HttpResponse:
    memberships = list(
        Membership.objects.select_related("workspace")
        .filter(user=request.user)
        .order_by("workspace__name")
    )
    return render(
        request, "workspaces/home.html", {"statuses": workspace_statuses(memberships=memberships)}
    )
