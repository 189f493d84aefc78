from django.conf import settings
from django.core.checks import Error, Tags, Warning, register

from .crypto import KeyRing, KeyRingError


@register(Tags.security, deploy=False)
def check_key_ring(app_configs=None, **kwargs):
    """A production start needs a valid key ring; development only gets a warning."""
    value = settings.LLM_KEY_ENCRYPTION_KEYS
    try:
        KeyRing.parse(value)
    except KeyRingError as exc:
        hint = (
            "Run 'python manage.py generate_encryption_key' and set LLM_KEY_ENCRYPTION_KEYS "
            "to the printed entry (keep it secret, and apart from DJANGO_SECRET_KEY)."
        )
        if settings.DEBUG and not value:
            return [Warning(str(exc), hint=hint, id="llm_keys.W001")]
        return [Error(str(exc), hint=hint, id="llm_keys.E001")]
    return []
