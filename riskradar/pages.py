"""Small helpers the server-rendered pages of every app share."""

from django.http import HttpRequest


def parse_sort(value: str, allowed: dict[str, str], default: str) -> tuple[str, str]:
    """Return the sort key to show ("-name") and the field to order by ("-name"), limited to `allowed`."""
    key = value.removeprefix("-")
    if key not in allowed:
        return default, allowed[default]
    descending = value.startswith("-")
    return value, f"-{allowed[key]}" if descending else allowed[key]


def partial_wanted(request: HttpRequest) -> bool:
    """Whether to answer with the fragment alone: an htmx request, except a history restore."""
    # A history restore after a cache miss needs the whole page, not the fragment.
    return bool(request.htmx) and not request.htmx.history_restore_request
