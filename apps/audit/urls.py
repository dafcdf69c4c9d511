from django.urls import path

from apps.audit import views

app_name = "audit"

urlpatterns = [
    path("", views.audit_log_page, name="log"),
    path("export.csv", views.audit_log_export, name="export"),
]
