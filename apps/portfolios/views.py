from django.contrib.auth.decorators import login_required, permission_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.utils import timezone
from django.utils.cache import patch_vary_headers
from django.views.decorators.http import require_GET

from apps.portfolios.models import Portfolio
from apps.portfolios.selectors import (
    portfolio_list,
    portfolio_market_values,
    portfolio_recent_trades,
    portfolio_valuation,
)
from riskradar.pages import parse_sort, partial_wanted

PAGE_SIZE = 25
MAX_SEARCH = 100
RECENT_TRADES = 20
# ?sort= value -> model field; anything else falls back to the default.
LIST_SORTS = {
    "code": "code",
    "name": "name",
    "base_currency": "base_currency",
    "positions": "position_count",
    "created": "created_at",
}
DEFAULT_SORT = "code"


@login_required
@permission_required("portfolios.view_portfolio", raise_exception=True)
@require_GET
def portfolio_list_page(request: HttpRequest) -> HttpResponse:
    """List portfolios with search, sorting, pagination and market values; the table alone for htmx."""
    search = request.GET.get("q", "").strip()[:MAX_SEARCH]
    sort, order_field = parse_sort(request.GET.get("sort", ""), LIST_SORTS, DEFAULT_SORT)
    portfolios = portfolio_list(search=search).order_by(order_field, "pk")
    page = Paginator(portfolios, PAGE_SIZE).get_page(request.GET.get("page"))
    totals = portfolio_market_values(portfolios=list(page.object_list))
    context = {
        "page_obj": page,
        "page_range": page.paginator.get_elided_page_range(page.number),
        "rows": [(portfolio, totals[portfolio.pk]) for portfolio in page.object_list],
        "search": search,
        "sort": sort,
    }
    template = "portfolios/_table.html" if partial_wanted(request) else "portfolios/list.html"
    response = render(request, template, context)
    # The same URL answers with a fragment or a page; caches must keep them apart.
    patch_vary_headers(response, ["HX-Request"])
    return response


@login_required
@permission_required("portfolios.view_portfolio", raise_exception=True)
@require_GET
def portfolio_detail_page(request: HttpRequest, code: str) -> HttpResponse:
    """Show a portfolio's valued positions and recent trades; the positions section alone for htmx."""
    portfolio = get_object_or_404(Portfolio.objects.select_related("owner", "benchmark"), code=code)
    valuation = portfolio_valuation(portfolio=portfolio)
    context = {
        "portfolio": portfolio,
        "valuation": valuation,
        "unvalued": [v for v in valuation.positions if v.problems],
        "valued_at": timezone.now(),
    }
    if partial_wanted(request):
        response = render(request, "portfolios/_positions.html", context)
    else:
        context["trades"] = portfolio_recent_trades(portfolio=portfolio, limit=RECENT_TRADES)
        response = render(request, "portfolios/detail.html", context)
    patch_vary_headers(response, ["HX-Request"])
    return response
