"""Logging in with an e-mail address, and the request's user from its session's load."""

from contextvars import ContextVar

from django.contrib import auth
from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.middleware import AuthenticationMiddleware as DjangoAuthMiddleware
from django.utils.functional import SimpleLazyObject

from config.db import concrete_field_names, select_instance

# The session whose user Django's get_user is resolving right now (see AuthenticationMiddleware).
_resolving_session: ContextVar = ContextVar("resolving_session", default=None)


class EmailBackend(ModelBackend):
    """Authenticate with an e-mail address (any case) and a password."""

    def authenticate(self, request, username=None, password=None, **kwargs):
        if username is None or password is None:
            return None
        user_model = get_user_model()
        try:
            user = user_model._default_manager.get(email__iexact=username.strip())
        except (user_model.DoesNotExist, user_model.MultipleObjectsReturned):
            # Run the hasher anyway so a missing account takes as long as a wrong password.
            user_model().set_password(password)
            return None
        if user.check_password(password) and self.user_can_authenticate(user):
            return user
        return None

    def get_user(self, user_id):
        """Return the active user of a session, as ModelBackend does.

        The row the request's session load brought along (workspaces.sessions) is used when
        it is this user's; otherwise one fixed query (config.db), which spares the ORM's
        query compilation, costlier than the lookup itself.
        """
        session = _resolving_session.get()
        found, user = False, None
        if session is not None and hasattr(session, "user_loaded_with_session"):
            found, user = session.user_loaded_with_session(user_id)
        if not found:
            user_model = get_user_model()
            user = select_instance(
                user_model,
                concrete_field_names(user_model),
                f"{user_model._meta.pk.column} = %s",
                [user_model._meta.pk.to_python(user_id)],
            )
        return user if user is not None and self.user_can_authenticate(user) else None


class AuthenticationMiddleware(DjangoAuthMiddleware):
    """Django's authentication middleware, with the session's load doing the lookups.

    - For a workspace's view (its URL names the workspace ``slug``), the session is told to
      bring the user's membership of that workspace along when it loads.
    - ``request.user`` is resolved by Django's ``get_user`` (with its session-hash check);
      while it runs, the backend may take the user row the session's load read.
    """

    def process_request(self, request):
        super().process_request(request)
        request.user = SimpleLazyObject(lambda: _get_user(request))

    def process_view(self, request, view_func, view_args, view_kwargs):
        slug = view_kwargs.get("slug")
        expect = getattr(request.session, "expect_workspace", None)
        if isinstance(slug, str) and expect is not None:
            expect(slug)


def _get_user(request):
    if not hasattr(request, "_cached_user"):
        token = _resolving_session.set(request.session)
        try:
            request._cached_user = auth.get_user(request)
        finally:
            _resolving_session.reset(token)
    return request._cached_user
