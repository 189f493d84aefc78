from django.utils.functional import SimpleLazyObject


def workspace(request):
    """Expose the current workspace (set by the access helper) and its invalid key, if any."""
    current = getattr(request, "workspace", None)
    if current is None:
        return {}

    def invalid_key():
        from llm_keys.models import KeyStatus, LLMKey

        return LLMKey.objects.filter(workspace=current, status=KeyStatus.INVALID).first()

    return {
        "workspace": current,
        "membership": current.membership,
        "invalid_llm_key": SimpleLazyObject(invalid_key),
    }
