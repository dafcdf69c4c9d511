from django.urls import path

from apps.portfolios import views

app_name = "portfolios"

urlpatterns = [
    path("", views.portfolio_list_page, name="list"),
    path("<str:code>/", views.portfolio_detail_page, name="detail"),
]
