from django.urls import path

from apps.risk import views

app_name = "risk"

# Scenario paths come before <code>/, so they are never read as a portfolio code.
urlpatterns = [
    path("", views.risk_overview_page, name="overview"),
    path("scenarios/", views.scenario_list_page, name="scenarios"),
    path("scenarios/new/", views.scenario_create_page, name="scenario-create"),
    path("scenarios/<int:pk>/edit/", views.scenario_edit_page, name="scenario-edit"),
    path("<str:code>/", views.risk_portfolio_page, name="portfolio"),
    path("<str:code>/recalculate/", views.risk_recalculate, name="recalculate"),
    path("<str:code>/history/", views.risk_score_history, name="score-history"),
    path("<str:code>/backtest/", views.risk_backtest_panel, name="backtest"),
    path("<str:code>/what-if/", views.risk_what_if_panel, name="what-if"),
    path("<str:code>/explain/", views.risk_explain_panel, name="explain"),
    path("<str:code>/ladder/", views.risk_ladder_panel, name="ladder"),
]
