from django.urls import path

from apps.market import views

app_name = "market"

urlpatterns = [
    path("instruments/", views.instrument_list_page, name="instrument-list"),
    path("data-source/", views.data_source_page, name="data-source"),
    # <path:> because symbols may hold "/" (e.g. USD/INR) besides . - _ & : ^ =
    path("instruments/<path:symbol>/", views.instrument_detail_page, name="instrument-detail"),
]
