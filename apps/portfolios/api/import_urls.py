from django.urls import re_path

from apps.portfolios.api.imports import ImportView

# No trailing slash, like every other path under /api/v1.
urlpatterns = [
    re_path(r"^(?P<kind>instruments|prices|positions|trades)$", ImportView.as_view(), name="api-import"),
]
