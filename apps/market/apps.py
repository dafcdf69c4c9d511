from django.apps import AppConfig


class MarketConfig(AppConfig):
    name = "apps.market"
    verbose_name = "Market data"

    def ready(self) -> None:
        from django.db.models.signals import post_delete, post_save

        from apps.market.models import PriceBar

        # Single bars saved or deleted one by one (the admin); bulk writers call price_history_changed().
        post_save.connect(_price_bar_changed, sender=PriceBar, dispatch_uid="market.price_bar_saved")
        post_delete.connect(_price_bar_changed, sender=PriceBar, dispatch_uid="market.price_bar_deleted")


def _price_bar_changed(**kwargs) -> None:
    from apps.market.history import price_history_changed

    price_history_changed()
