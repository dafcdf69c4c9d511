"""Reads of portfolios: lists and the valued positions of one portfolio."""

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal

from django.db.models import Count, Q, QuerySet

from apps.market.models import Instrument
from apps.market.selectors import fx_table, latest_prices
from apps.portfolios.models import Portfolio, Position, Trade


def portfolio_list(*, search: str = "") -> QuerySet[Portfolio]:
    """Return portfolios with their position count, filtered by code, name or client reference."""
    qs = Portfolio.objects.select_related("owner", "benchmark").annotate(
        position_count=Count("positions", filter=~Q(positions__quantity=0))
    )
    if search:
        qs = qs.filter(Q(code__icontains=search) | Q(name__icontains=search) | Q(client_reference__icontains=search))
    return qs


@dataclass
class ValuedPosition:
    """A position priced at the latest price and converted to the portfolio's base currency.

    market_value is quantity x price x multiplier (for futures and options, the notional); it and
    the unrealised P&L are None when the instrument has no price or its currency no FX path.
    """

    position: Position
    instrument: Instrument
    price: Decimal | None
    price_as_of: dt.datetime | dt.date | None
    price_source: str | None
    fx_rate: Decimal | None
    market_value_local: Decimal | None
    market_value: Decimal | None
    unrealized_pnl: Decimal | None
    weight: Decimal | None = None
    problems: list[str] = field(default_factory=list)


@dataclass
class PortfolioValuation:
    portfolio: Portfolio
    positions: list[ValuedPosition]
    market_value: Decimal
    gross_exposure: Decimal
    unrealized_pnl: Decimal
    realized_pnl: Decimal
    unpriced: int


def portfolio_valuation(*, portfolio: Portfolio, include_closed: bool = False) -> PortfolioValuation:
    """Value every position of a portfolio in its base currency at the latest prices and FX rates."""
    positions = list(portfolio.positions.select_related("instrument"))
    if not include_closed:
        positions = [p for p in positions if p.quantity != 0]
    prices = latest_prices(instrument_ids=[p.instrument_id for p in positions])
    fx = fx_table()
    base = portfolio.base_currency
    valued: list[ValuedPosition] = []
    total = gross = unrealized = realized = Decimal(0)
    unpriced = 0
    for position in positions:
        instrument = position.instrument
        price = prices.get(instrument.pk)
        rate = fx.rate(instrument.currency, base)
        problems = []
        if price is None:
            problems.append("no price")
        if rate is None:
            problems.append(f"no FX rate {instrument.currency}/{base}")
        local = pnl_local = value = pnl = None
        if price is not None:
            local = position.quantity * price.value * instrument.multiplier
            pnl_local = (price.value - position.average_cost) * position.quantity * instrument.multiplier
        if local is not None and rate is not None:
            value = local * rate
            pnl = pnl_local * rate
            total += value
            gross += abs(value)
            unrealized += pnl
        else:
            unpriced += 1
        if rate is not None:
            realized += position.realized_pnl * rate
        valued.append(
            ValuedPosition(
                position=position,
                instrument=instrument,
                price=price.value if price else None,
                price_as_of=price.as_of if price else None,
                price_source=price.source if price else None,
                fx_rate=rate,
                market_value_local=local,
                market_value=value,
                unrealized_pnl=pnl,
                problems=problems,
            )
        )
    for v in valued:
        if v.market_value is not None and gross:
            v.weight = v.market_value / gross
    return PortfolioValuation(portfolio, valued, total, gross, unrealized, realized, unpriced)


@dataclass(frozen=True)
class PortfolioTotal:
    """A portfolio's market value in its base currency, and how many positions it could not value."""

    market_value: Decimal
    unpriced: int


def portfolio_market_values(*, portfolios: list[Portfolio]) -> dict[int, PortfolioTotal]:
    """Return the market value of each portfolio as portfolio_valuation computes it, in a few queries for all.

    Meant for lists: one query for the positions, one or two for prices and two for FX rates, however
    many portfolios there are.
    """
    bases = {p.pk: p.base_currency for p in portfolios}
    positions = list(Position.objects.filter(portfolio_id__in=bases).exclude(quantity=0).select_related("instrument"))
    prices = latest_prices(instrument_ids=list({p.instrument_id for p in positions}))
    fx = fx_table()
    values = dict.fromkeys(bases, Decimal(0))
    unpriced = dict.fromkeys(bases, 0)
    for position in positions:
        price = prices.get(position.instrument_id)
        rate = fx.rate(position.instrument.currency, bases[position.portfolio_id])
        if price is None or rate is None:
            unpriced[position.portfolio_id] += 1
            continue
        values[position.portfolio_id] += position.quantity * price.value * position.instrument.multiplier * rate
    return {pk: PortfolioTotal(values[pk], unpriced[pk]) for pk in bases}


def portfolio_recent_trades(*, portfolio: Portfolio, limit: int = 20) -> list[Trade]:
    """Return a portfolio's latest trades, newest first."""
    return list(portfolio.trades.select_related("instrument", "booked_by").order_by("-traded_at", "-id")[:limit])


def instrument_holders(*, instrument: Instrument) -> QuerySet[Position]:
    """Return the open positions in an instrument, with their portfolios, largest holding first."""
    return (
        Position.objects.filter(instrument=instrument)
        .exclude(quantity=0)
        .select_related("portfolio")
        .order_by("-quantity", "portfolio__code")
    )
