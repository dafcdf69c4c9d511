from django.urls import path

from apps.accounts import views

app_name = "accounts"

urlpatterns = [
    path("login/", views.LoginView.as_view(), name="login"),
    path("login/code/", views.login_code, name="login-code"),
    path("logout/", views.LogoutView.as_view(), name="logout"),
    path("register/", views.register, name="register"),
    path("settings/", views.user_settings, name="settings"),
    path("two-factor/setup/", views.two_factor_setup, name="two-factor-setup"),
    path("two-factor/backup-codes/", views.two_factor_backup_codes, name="two-factor-backup-codes"),
    path("two-factor/backup-codes/renew/", views.two_factor_backup_codes_new, name="two-factor-backup-codes-renew"),
    path("two-factor/turn-off/", views.two_factor_turn_off, name="two-factor-turn-off"),
]
