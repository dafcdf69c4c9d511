from django.urls import path

from apps.accounts.api.views import LoginView, LogoutView, MeView, RegisterView

urlpatterns = [
    path("login", LoginView.as_view(), name="api-login"),
    path("logout", LogoutView.as_view(), name="api-logout"),
    path("me", MeView.as_view(), name="api-me"),
    path("register", RegisterView.as_view(), name="api-register"),
]
