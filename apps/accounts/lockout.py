"""The answer to a sign-in refused after too many failures (django-axes' AXES_LOCKOUT_CALLABLE)."""

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render

MSG_LOCKED = (
    "Too many failed sign-ins for this username from your address. Try again in {minutes} minutes, "
    "or ask an Admin to unlock the account."
)


def lockout_response(request: HttpRequest, original_response=None, credentials=None) -> HttpResponse:
    seconds = int(settings.AXES_COOLOFF_TIME.total_seconds())
    message = MSG_LOCKED.format(minutes=max(1, round(seconds / 60)))
    if request.path.startswith("/api/"):
        response: HttpResponse = JsonResponse({"detail": message, "code": "locked_out"}, status=429)
    else:
        response = render(request, "accounts/locked_out.html", {"message": message}, status=429)
    response["Retry-After"] = str(seconds)
    return response
