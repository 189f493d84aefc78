from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend

from config.db import concrete_field_names, select_instance


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
        """Return the active user of a session, as ModelBackend does, with one fixed query.

        Every authenticated request runs this; a fixed statement (``config.db``) spares it
        the ORM's query compilation, which costs more than the lookup itself.
        """
        user_model = get_user_model()
        user = select_instance(
            user_model,
            concrete_field_names(user_model),
            f"{user_model._meta.pk.column} = %s",
            [user_model._meta.pk.to_python(user_id)],
        )
        return user if user is not None and self.user_can_authenticate(user) else None
