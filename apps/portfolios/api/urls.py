from django.urls import path

from apps.alerts.api.views_pretrade import TradeCheckView
from apps.portfolios.api import batch
from apps.portfolios.api.views import PortfolioViewSet, PositionViewSet, TradeViewSet
from riskradar.api import Router

router = Router()
router.register("portfolios", PortfolioViewSet, basename="api-portfolio")
router.register("positions", PositionViewSet, basename="api-position")
router.register("trades", TradeViewSet, basename="api-trade")

urlpatterns = [
    path("trades/check", TradeCheckView.as_view(), name="api-trade-check"),  # before /trades/{id}
    *batch.urlpatterns,  # POST /trades/batch, also before /trades/{id}
    *router.urls,
]
