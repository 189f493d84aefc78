"""Friendly error pages in the site's layout (decision 063).

Django renders ``404.html`` and ``500.html`` by itself; the 403 page needs the workspace's
admins, so it has a handler of its own.
"""

from django.http import HttpRequest, HttpResponseForbidden
from django.template import loader
from django.views.decorators.csrf import requires_csrf_token

from .models import Membership


def _membership_of_request(request: HttpRequest) -> Membership | None:
    """The user's membership of the workspace named in the URL, if any."""
    match = getattr(request, "resolver_match", None)
    slug = match.kwargs.get("slug") if match else None
    user = getattr(request, "user", None)
    if not slug or user is None or not user.is_authenticated:
        return None
    return (
        Membership.objects.select_related("workspace")
        .filter(workspace__slug=slug, user=user)
        .first()
    )


@requires_csrf_token
def permission_denied(request: HttpRequest, exception: Exception | None = None):
    """Say what was refused and who can help: the admins of the workspace, when there is one."""
    membership = _membership_of_request(request)
    context: dict = {"reason": str(exception or "")}
    if membership is not None:
        context.update(
            workspace=membership.workspace,
            membership=membership,
            admins=list(
                Membership.objects.filter(
                    workspace=membership.workspace, role=Membership.Role.ADMIN
                )
                .exclude(user__email="")
                .order_by("user__email")
                .values_list("user__email", flat=True)
            ),
        )
    template = loader.get_template("403.html")
    return HttpResponseForbidden(template.render(context, request))
