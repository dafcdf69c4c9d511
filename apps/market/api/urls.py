from apps.market.api import ticks
from apps.market.api.views import FxRateViewSet, InstrumentViewSet, PriceBarViewSet, QuoteViewSet
from riskradar.api import Router

router = Router()
router.register("instruments", InstrumentViewSet, basename="api-instrument")
router.register("prices", PriceBarViewSet, basename="api-pricebar")
router.register("quotes", QuoteViewSet, basename="api-quote")
router.register("fx-rates", FxRateViewSet, basename="api-fxrate")

urlpatterns = [*router.urls, *ticks.urlpatterns]
