from django.apps import AppConfig


class StreamConfig(AppConfig):
    name = "apps.stream"
    verbose_name = "Live stream"
