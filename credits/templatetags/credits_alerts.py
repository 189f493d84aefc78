from django import template

from credits.selectors import credits_alert_state, credits_balance
from llm_keys.models import CredentialSource
from llm_keys.selectors import credentials_next

register = template.Library()


@register.inclusion_tag("credits/_alert_banner.html")
def credits_alert_banner(workspace, membership=None):
    """The low-balance / no-credits banner of the workspace, if it is in an alert state, with
    only the advice that applies: saving a key is advised while no key is saved, and only
    admins are told to do it themselves."""
    alert = credits_alert_state(workspace=workspace)
    source = credentials_next(workspace=workspace).source if alert.active else None
    return {
        "alert": alert,
        "workspace": workspace,
        "key_in_use": source == CredentialSource.BYOK,
        "no_key": source == CredentialSource.PLATFORM,
        "is_admin": getattr(membership, "is_admin", False),
    }


@register.simple_tag
def workspace_credits_balance(workspace) -> int:
    """The workspace's AI credits balance, for pages of apps below credits."""
    return credits_balance(workspace=workspace)
