from django import template

from credits.selectors import credits_alert_state

register = template.Library()


@register.inclusion_tag("credits/_alert_banner.html")
def credits_alert_banner(workspace):
    """The low-balance / no-credits banner of the workspace, if it is in an alert state."""
    return {"alert": credits_alert_state(workspace=workspace), "workspace": workspace}
