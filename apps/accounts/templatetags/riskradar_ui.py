"""Layout helpers shared by every page: the version in the footer and sortable table headers."""

import functools
import tomllib

from django import template
from django.conf import settings
from django.utils.html import format_html

register = template.Library()


@functools.cache
def _version() -> str:
    try:
        with open(settings.BASE_DIR / "pyproject.toml", "rb") as fh:
            return tomllib.load(fh)["project"]["version"]
    except (OSError, KeyError, tomllib.TOMLDecodeError):
        return "dev"


@register.simple_tag
def riskradar_version() -> str:
    """Return the version of RiskRadar from pyproject.toml."""
    return _version()


@register.simple_tag(takes_context=True)
def sortable_th(context, field: str, label: str, css_class: str = "") -> str:
    """Render a column header linking to the list sorted by `field`, toggling the direction when already sorted.

    The link keeps the other query parameters (search, filters) and drops the page, since the order changed.
    The current sort comes from the context variable `sort` ("name" or "-name").
    """
    request = context["request"]
    current = context.get("sort", "")
    params = request.GET.copy()
    params.pop("page", None)
    if current == field:
        params["sort"], arrow, aria = f"-{field}", "▲", "ascending"
    elif current == f"-{field}":
        params["sort"], arrow, aria = field, "▼", "descending"
    else:
        params["sort"], arrow, aria = field, "", "none"
    return format_html(
        '<th scope="col"{} aria-sort="{}"><a class="sort-link" href="?{}">{}'
        '<span class="sort-arrow" aria-hidden="true">{}</span></a></th>',
        format_html(' class="{}"', css_class) if css_class else "",
        aria,
        params.urlencode(),
        label,
        arrow,
    )
