from apps.portfolios.api.views import PortfolioViewSet, PositionViewSet, TradeViewSet
from riskradar.api import Router

router = Router()
router.register("portfolios", PortfolioViewSet, basename="api-portfolio")
router.register("positions", PositionViewSet, basename="api-position")
router.register("trades", TradeViewSet, basename="api-trade")

urlpatterns = router.urls
