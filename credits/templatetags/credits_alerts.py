from django import template

from credits.selectors import credits_alert_state, credits_balance
from llm_keys.models import CredentialSource, Provider
from llm_keys.selectors import credentials_next_by_provider

register = template.Library()


@register.inclusion_tag("credits/_alert_banner.html")
def credits_alert_banner(workspace, membership=None):
    """The low-balance / no-credits banner of the workspace, if it is in an alert state, with
    only the advice that applies: saving a key is advised for each provider whose requests
    spend credits (no key saved), and only admins are told to do it themselves."""
    alert = credits_alert_state(workspace=workspace)
    paid_with = credentials_next_by_provider(workspace=workspace) if alert.active else {}

    def named(source: str, joined_by: str) -> str:
        labels = [Provider(p).label for p, paid in paid_with.items() if paid.source == source]
        return joined_by.join(labels)

    on_credits = named(CredentialSource.PLATFORM, " or ")
    on_keys = named(CredentialSource.BYOK, " and ")
    return {
        "alert": alert,
        "workspace": workspace,
        # Every provider on the workspace's own keys: the balance does not matter now.
        "key_in_use": bool(on_keys) and not on_credits,
        "key_providers": on_keys,
        # The providers whose requests spend credits: saving their keys is the advice.
        "no_key": bool(on_credits),
        "credit_providers": on_credits,
        "is_admin": getattr(membership, "is_admin", False),
    }


@register.simple_tag
def workspace_credits_balance(workspace) -> int:
    """The workspace's AI credits balance, for pages of apps below credits."""
    return credits_balance(workspace=workspace)
