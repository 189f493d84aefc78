from django import template

from credits.selectors import credits_alert_state, credits_balance

register = template.Library()


@register.inclusion_tag("credits/_alert_banner.html")
def credits_alert_banner(workspace):
    """The low-balance / no-credits banner of the workspace, if it is in an alert state."""
    return {"alert": credits_alert_state(workspace=workspace), "workspace": workspace}


@register.simple_tag
def workspace_credits_balance(workspace) -> int:
    """The workspace's AI credits balance, for pages of apps below credits."""
    return credits_balance(workspace=workspace)
