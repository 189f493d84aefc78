"""Django's database sessions, stored with the user they belong to (``UserSession``).

Only the model differs from Django's ``db`` backend: the store writes the session's user id
into its own column on every save, so deleting a user deletes the user's sessions.
"""

from django.contrib.auth import SESSION_KEY, get_user_model
from django.contrib.sessions.backends.db import SessionStore as DatabaseSessionStore


class SessionStore(DatabaseSessionStore):
    @classmethod
    def get_model_class(cls):
        from .models import UserSession

        return UserSession

    def create_model_instance(self, data):
        instance = super().create_model_instance(data)
        user_id = data.get(SESSION_KEY)
        instance.user_id = None if user_id is None else get_user_model()._meta.pk.to_python(user_id)
        return instance
