from django.urls import path, re_path

from apps.portfolios import import_views

app_name = "imports"

KIND = r"(?P<kind>instruments|prices|positions|trades)"

urlpatterns = [
    path("", import_views.import_index, name="index"),
    re_path(rf"^{KIND}/$", import_views.import_upload, name="upload"),
    re_path(rf"^{KIND}/apply/$", import_views.import_apply, name="apply"),
    re_path(rf"^{KIND}/sample\.csv$", import_views.import_sample, name="sample"),
]
