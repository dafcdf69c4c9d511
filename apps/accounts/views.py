from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from apps.accounts.forms import UserSettingsForm

MSG_SIGNED_OUT = "You have signed out."
MSG_SETTINGS_SAVED = "Settings saved. Times are now shown in {zone}."
ERR_NO_ROLE = "Your account has no role yet; ask an administrator to give you one."


class LoginView(auth_views.LoginView):
    """Sign in; a user who is already signed in goes straight on."""

    template_name = "accounts/login.html"
    redirect_authenticated_user = True


class LogoutView(auth_views.LogoutView):
    """Sign out (POST only, as Django requires) and say so on the login page."""

    def post(self, request, *args, **kwargs):
        response = super().post(request, *args, **kwargs)
        messages.info(request, MSG_SIGNED_OUT)
        return response


@login_required
@require_http_methods(["GET", "POST"])
def user_settings(request: HttpRequest) -> HttpResponse:
    """Show and save the signed-in user's display preferences."""
    if request.user.role is None:
        raise PermissionDenied(ERR_NO_ROLE)
    form = UserSettingsForm(request.POST or None, instance=request.user)
    if request.method == "POST" and form.is_valid():
        user = form.save()
        messages.success(request, MSG_SETTINGS_SAVED.format(zone=user.display_timezone))
        return redirect("accounts:settings")
    return render(request, "accounts/settings.html", {"form": form})
