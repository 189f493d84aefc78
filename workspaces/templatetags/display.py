"""Template filters for dates and credits, and for wiring form fields to their help and
errors (decisions 061 and 062)."""

from __future__ import annotations

from datetime import datetime

from django import template
from django.forms import BoundField
from django.utils.html import format_html

from workspaces.formatting import format_credits, format_datetime, format_relative

register = template.Library()


@register.filter
def when(value: datetime | None) -> str:
    """``{{ dt|when }}`` → "2 Dec 2026, 05:50 UTC" (or "never")."""
    return format_datetime(value)


@register.filter
def ago(value: datetime | None) -> str:
    """``{{ dt|ago }}`` → "3 minutes ago" / "in 2 hours"."""
    return format_relative(value)


@register.filter
def moment(value: datetime | None) -> str:
    """``{{ dt|moment }}`` → a ``<time>`` with the absolute date and, beside it, the relative
    one: "2 Dec 2026, 05:50 UTC (3 minutes ago)"."""
    if value is None:
        return "never"
    return format_html(
        '<time datetime="{}">{}</time> <span class="muted">({})</span>',
        value.isoformat(),
        format_datetime(value),
        format_relative(value),
    )


@register.filter
def email(value: str | None) -> str:
    """``{{ address|email }}`` → the address in one piece on a desktop, and on a phone's
    stacked table free to wrap only after its "@" (never inside a word)."""
    local, at, domain = (value or "").partition("@")
    if not at:
        return value or ""
    # Not <wbr>: Chromium breaks at one even under white-space: nowrap.
    return format_html('<span class="email">{}@<span>{}</span></span>', local, domain)


@register.filter
def credits(value: int | None) -> str:
    """``{{ n|credits }}`` → "12,500"."""
    return format_credits(value)


def field_ids(field: BoundField) -> dict[str, str]:
    """The ids of a field's help text and error list, as ``field.html`` renders them."""
    return {"help": f"{field.auto_id}_helptext", "errors": f"{field.auto_id}_error"}


@register.filter
def described(field: BoundField, extra_ids: str = "") -> str:
    """Render the field's widget with ``aria-describedby`` naming exactly the help text,
    error list and extra ids that the page renders, and ``aria-invalid`` on errors."""
    ids = field_ids(field)
    describedby = [i for i in extra_ids.split() if i]
    if field.help_text:
        describedby.append(ids["help"])
    attrs: dict[str, str] = {}
    if field.errors:
        describedby.insert(0, ids["errors"])
        attrs["aria-invalid"] = "true"
    if describedby:
        attrs["aria-describedby"] = " ".join(describedby)
    return field.as_widget(attrs=attrs)
