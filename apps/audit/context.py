"""The request being served, kept for the audit trail: services deep below a view record who and from where."""

import contextvars
import ipaddress

from django.conf import settings
from django.utils.ipv6 import clean_ipv6_address

_request: contextvars.ContextVar = contextvars.ContextVar("riskradar_audit_request", default=None)


class AuditContextMiddleware:
    """Remember the current request (sync and async views alike) for audit_record()."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        token = _request.set(request)
        try:
            return self.get_response(request)
        finally:
            _request.reset(token)


def current_request():
    return _request.get()


def client_ip(request) -> str | None:
    """The client's address: REMOTE_ADDR, or with TRUSTED_PROXY_COUNT proxies in front, the address the
    outermost trusted proxy saw (counted from the right of X-Forwarded-For, so a client cannot forge it)."""
    if request is None:
        return None
    address = request.META.get("REMOTE_ADDR")
    proxies = getattr(settings, "TRUSTED_PROXY_COUNT", 0)
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
    if proxies > 0 and forwarded:
        hops = [h.strip() for h in forwarded.split(",") if h.strip()]
        if len(hops) >= proxies:
            address = hops[-proxies]
    return normalised_ip(address)


def normalised_ip(address: str | None) -> str | None:
    """The address as the database gives it back (IPv6 in Django's clean form), or None when not an address."""
    if not address:
        return None
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return None
    return clean_ipv6_address(address) if parsed.version == 6 else str(parsed)


def user_agent(request) -> str:
    return (request.META.get("HTTP_USER_AGENT", "") if request is not None else "")[:300]
