from django.apps import AppConfig


class StreamConfig(AppConfig):
    name = "apps.stream"
    verbose_name = "Live stream"

    def ready(self) -> None:
        from apps.stream import signals  # noqa: F401  (connects the receivers)
