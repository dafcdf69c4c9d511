"""The surveillance pages under /alerts/ (the API is apps.alerts.api, under /api/v1/)."""

from django.urls import path

from apps.alerts import views

app_name = "alerts"

urlpatterns = [
    path("", views.alert_inbox_page, name="inbox"),
    path("acknowledge/", views.alert_acknowledge_many, name="acknowledge-many"),
    path("charts/", views.alert_chart_data, name="chart-data"),
    path("surveillance/", views.surveillance_page, name="surveillance"),
    path("rules/", views.rule_list_page, name="rules"),
    path("rules/new/", views.rule_create_page, name="rule-create"),
    path("rules/parameters/", views.rule_parameters, name="rule-parameters"),
    path("rules/dry-run/", views.rule_dry_run_unsaved, name="rule-dry-run-unsaved"),
    path("rules/<int:pk>/edit/", views.rule_edit_page, name="rule-edit"),
    path("rules/<int:pk>/dry-run/", views.rule_dry_run_page, name="rule-dry-run"),
    path("limits/", views.limit_increase_page, name="limits"),
    path("limits/request/", views.limit_increase_request, name="limit-request"),
    path("limits/<int:pk>/decide/", views.limit_increase_decide, name="limit-decide"),
    path("utilisation/<str:code>/", views.portfolio_utilisation, name="utilisation"),
    path("<int:pk>/", views.alert_detail_page, name="detail"),
    path("<int:pk>/row/", views.alert_row, name="row"),
    path("<int:pk>/acknowledge/", views.alert_acknowledge, name="acknowledge"),
    path("<int:pk>/resolve/", views.alert_resolve, name="resolve"),
]
