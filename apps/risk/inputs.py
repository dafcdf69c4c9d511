"""Engine inputs from the database: holdings, aligned price history and FX, live or as of a past time.

Point in time (`as_of` given) uses only what was known then: positions replayed from the trades with
`traded_at <= as_of`, daily closes dated on or before `as_of.date()`, and FX rates likewise. Quotes are
never used as of a past time: a Quote row is overwritten by every tick, so a figure priced from one
could not be reproduced later; the last close stands in for it. Live (`as_of` None) uses the stored
Position rows, each instrument's Quote (else its last close) and the latest FX rates.

Everything is read set-based: one query per table, closes pivoted into numpy, whether for one portfolio
(portfolio_inputs) or for many on one shared load (portfolios_inputs, for the recalculate-everything task).
"""

import dataclasses
import datetime as dt
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal

import numpy as np
from django.db.models import Max, OuterRef, Subquery
from django.utils import timezone

from apps.market.history import close_history
from apps.market.models import AssetClass, FeedState, FxRate, Instrument, PriceBar, Quote
from apps.market.selectors import PIVOT_CURRENCY
from apps.portfolios.models import Portfolio, Position, Side, Trade
from apps.portfolios.positions import PositionState, apply_fill
from apps.risk.engine.types import EngineConfig, Holding, MarketData
from apps.risk.models import RiskConfig

HISTORY_MARGIN_DAYS = 20  # business days fetched beyond lookback + horizon, for holidays and fills
STALE_AFTER_BUSINESS_DAYS = 5  # a price or FX rate older than this (vs as_of) is flagged stale
DAYS_A_YEAR = 365.0
DERIVATIVES = (AssetClass.OPTION, AssetClass.FUTURE)

WARN_NO_PRICE = "{symbol}: no price on or before {date}; left out."
WARN_NO_UNDERLYING_PRICE = "{symbol}: no price for its underlying {underlying}; left out."
WARN_NO_FX = "{symbol}: no FX rate {currency}/{base} on or before {date}; left out."
WARN_STALE = "{symbol}: the price used is from {date}, more than {days} business days old."
WARN_STALE_TICK = "{symbol}: the live price is from {time:%Y-%m-%d %H:%M:%S} UTC, older than the feed's {seconds} s."
WARN_STALE_FX = "FX {currency}/{base}: the rate used is from {date}, more than {days} business days old."
WARN_EXPIRED = "{symbol}: expired on {expiry}, still held; valued at expiry."


@dataclass(frozen=True)
class ExtraTrade:
    """A hypothetical trade added to the holdings (what-if); quantity is signed."""

    instrument: Instrument
    quantity: Decimal
    price: Decimal | None = None


@dataclass
class PortfolioInputs:
    """What one calculation of a portfolio needs, and what it was built from."""

    portfolio_id: int
    base_currency: str
    as_of: dt.datetime  # the time the figures describe (now, for live)
    point_in_time: bool
    holdings: list[Holding]
    market: MarketData
    benchmark: str | None
    inputs_as_of: dt.datetime | None  # newest price or FX time used
    extra: list[Holding] = field(default_factory=list)  # holdings of the extra trades, not in `holdings`
    instruments: dict[str, Instrument] = field(default_factory=dict)  # holding key -> instrument
    quantities: dict[str, Decimal] = field(default_factory=dict)  # holding key -> quantity as stored
    stale: bool = False
    stale_symbols: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def as_of_date(self) -> np.datetime64:
        return np.datetime64(self.as_of.date(), "D")


def engine_config(config: RiskConfig, **overrides) -> EngineConfig:
    """Return the engine's parameters from the stored RiskConfig, with keyword overrides applied."""
    values = {
        "confidence_levels": tuple(float(x) for x in config.confidence_levels),
        "horizon_days": int(config.horizon_days),
        "lookback_days": int(config.lookback_days),
        "mc_paths": int(config.mc_paths),
        "mc_distribution": str(config.mc_distribution),
        "mc_t_dof": float(config.mc_t_dof),
        "var_limit_fraction": float(config.var_limit_fraction),
        "ewma_lambda": float(config.ewma_lambda),
        "risk_free_rate": float(config.risk_free_rate),
        "score_weights": {k: float(v) for k, v in (config.score_weights or {}).items()},
        "score_low": float(config.score_low),
        "score_medium": float(config.score_medium),
        "score_high": float(config.score_high),
    }
    values.update({k: v for k, v in overrides.items() if v is not None})
    if "confidence_levels" in overrides and overrides["confidence_levels"] is not None:
        values["confidence_levels"] = tuple(float(x) for x in overrides["confidence_levels"])
    return dataclasses.replace(EngineConfig(), **values)


def fx_symbol(currency: str, base: str) -> str:
    """Return the MarketData column of the currency -> base rate."""
    return f"FX:{currency}/{base}"


def continuous_rate(annual: float) -> float:
    """Return the continuously compounded equivalent of an annually compounded rate."""
    return math.log1p(annual)


# ------------------------------------------------------------------------------ positions


def positions_as_of(*, portfolio: Portfolio, as_of: dt.datetime) -> dict[int, Decimal]:
    """Return instrument id -> quantity, replaying the trades with traded_at <= as_of in booking order.

    The same arithmetic as the booking service (apply_fill, rounded as stored), without writing.
    """
    return _positions_as_of_many([portfolio.pk], as_of).get(portfolio.pk, {})


def _positions_as_of_many(portfolio_ids: list[int], as_of: dt.datetime) -> dict[int, dict[int, Decimal]]:
    """Return portfolio id -> positions_as_of, from one query over the trades of every portfolio given."""
    states: dict[int, dict[int, PositionState]] = {}
    rows = (
        Trade.objects.filter(portfolio_id__in=portfolio_ids, traded_at__lte=as_of)
        .order_by("portfolio_id", "id")
        .values_list("portfolio_id", "instrument_id", "side", "quantity", "price", "fees", "instrument__multiplier")
    )
    for portfolio_id, instrument_id, side, quantity, price, fees, multiplier in rows:
        book = states.setdefault(portfolio_id, {})
        book[instrument_id] = apply_fill(
            book.get(instrument_id, PositionState()),
            signed_quantity=quantity if side == Side.BUY else -quantity,
            price=price,
            fees=fees,
            multiplier=multiplier,
        ).rounded()
    return {pid: {pk: s.quantity for pk, s in book.items() if s.quantity != 0} for pid, book in states.items()}


def _positions_live_many(portfolio_ids: list[int]) -> dict[int, dict[int, Decimal]]:
    """Return portfolio id -> instrument id -> stored quantity (non-zero), from one query."""
    out: dict[int, dict[int, Decimal]] = {}
    rows = (
        Position.objects.filter(portfolio_id__in=portfolio_ids)
        .exclude(quantity=0)
        .values_list("portfolio_id", "instrument_id", "quantity")
    )
    for portfolio_id, instrument_id, quantity in rows:
        out.setdefault(portfolio_id, {})[instrument_id] = quantity
    return out


# ------------------------------------------------------------------------------ prices and FX


def _history_start(end: dt.date, days: int) -> dt.date:
    return np.busday_offset(np.datetime64(end, "D"), -days, roll="backward").astype(dt.date)


def _closes(instrument_ids: Iterable[int], start: dt.date, end: dt.date) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """Return instrument id -> (dates datetime64[D], closes float64) between start and end, oldest first."""
    return close_history(instrument_ids=instrument_ids, start=start, end=end)


def _last_closes(instrument_ids: list[int], on_or_before: dt.date) -> dict[int, tuple[Decimal, dt.date]]:
    """Return each instrument's latest close dated on or before a date (one query)."""
    last = PriceBar.objects.filter(instrument=OuterRef("pk"), date__lte=on_or_before).order_by("-date")
    rows = (
        Instrument.objects.filter(pk__in=instrument_ids)
        .annotate(close=Subquery(last.values("close")[:1]), bar_date=Subquery(last.values("date")[:1]))
        .values_list("pk", "close", "bar_date")
    )
    return {pk: (close, date) for pk, close, date in rows if close is not None}


class FxHistory:
    """Daily FX rates between currencies, direct, inverse or through USD, as in market.selectors.FxTable."""

    def __init__(self, start: dt.date, end: dt.date):
        rows = list(
            FxRate.objects.filter(date__gte=start, date__lte=end)
            .order_by("base_currency", "quote_currency", "date")
            .values_list("base_currency", "quote_currency", "date", "rate")
        )
        self.pairs: dict[tuple[str, str], tuple[np.ndarray, np.ndarray]] = {}
        grouped: dict[tuple[str, str], list] = {}
        for base, quote, date, rate in rows:
            grouped.setdefault((base, quote), []).append((date, rate))
        for pair, values in grouped.items():
            self.pairs[pair] = (
                np.array([d for d, _ in values], dtype="datetime64[D]"),
                np.fromiter((float(r) for _, r in values), dtype=np.float64, count=len(values)),
            )
        self.start, self.end = start, end
        self._latest: dict[tuple[str, str], tuple[float, dt.date]] | None = None

    def _direct(self, frm: str, to: str, dates: np.ndarray) -> np.ndarray | None:
        if (frm, to) in self.pairs:
            d, r = self.pairs[(frm, to)]
            return _on_dates(d, r, dates)
        if (to, frm) in self.pairs:
            d, r = self.pairs[(to, frm)]
            return 1.0 / _on_dates(d, r, dates)
        return None

    def series(self, frm: str, to: str, dates: np.ndarray) -> np.ndarray | None:
        """Return units of `to` per unit of `frm` on each date (NaN where unknown), or None without a path."""
        if frm == to:
            return np.ones(len(dates))
        direct = self._direct(frm, to, dates)
        if direct is not None:
            return direct
        first = np.ones(len(dates)) if frm == PIVOT_CURRENCY else self._direct(frm, PIVOT_CURRENCY, dates)
        second = np.ones(len(dates)) if to == PIVOT_CURRENCY else self._direct(PIVOT_CURRENCY, to, dates)
        if first is None or second is None:
            return None
        return first * second

    def latest(self, frm: str, to: str) -> tuple[float, dt.date] | None:
        """Return the latest rate on or before the end date, and the date of its oldest leg."""
        if frm == to:
            return 1.0, self.end
        if self._latest is None:
            self._latest = _fx_latest(self.end)
        legs = [(frm, to)] if _has(self._latest, frm, to) else [(frm, PIVOT_CURRENCY), (PIVOT_CURRENCY, to)]
        rate, oldest = 1.0, self.end
        for a, b in legs:
            if a == b:
                continue
            if (a, b) in self._latest:
                value, date = self._latest[(a, b)]
            elif (b, a) in self._latest:
                value, date = self._latest[(b, a)]
                value = 1.0 / value
            else:
                return None
            rate *= value
            oldest = min(oldest, date)
        return rate, oldest


def _has(pairs: dict, a: str, b: str) -> bool:
    return (a, b) in pairs or (b, a) in pairs


def _fx_latest(end: dt.date) -> dict[tuple[str, str], tuple[float, dt.date]]:
    """Return each pair's latest rate dated on or before `end`, with its date (two queries)."""
    latest = (
        FxRate.objects.filter(date__lte=end)
        .values("base_currency", "quote_currency")
        .annotate(last=Max("date"))
        .values_list("base_currency", "quote_currency", "last")
    )
    wanted = {(b, q): d for b, q, d in latest}
    if not wanted:
        return {}
    rows = FxRate.objects.filter(date__in=set(wanted.values())).values_list(
        "base_currency", "quote_currency", "date", "rate"
    )
    return {(b, q): (float(r), d) for b, q, d, r in rows if wanted.get((b, q)) == d}


def _on_dates(dates: np.ndarray, values: np.ndarray, wanted: np.ndarray) -> np.ndarray:
    """Return values at the wanted dates, NaN where the series has none."""
    out = np.full(len(wanted), np.nan)
    pos = np.searchsorted(dates, wanted)
    ok = pos < len(dates)
    ok[ok] = dates[pos[ok]] == wanted[ok]
    out[ok] = values[pos[ok]]
    return out


def _stale(price_date: dt.date, as_of: dt.date) -> bool:
    return int(np.busday_count(price_date, as_of)) > STALE_AFTER_BUSINESS_DAYS if price_date < as_of else False


def _as_datetime(value: dt.date | dt.datetime) -> dt.datetime:
    if isinstance(value, dt.datetime):
        return value
    return dt.datetime.combine(value, dt.time.min, tzinfo=dt.UTC)


# ------------------------------------------------------------------------------ the builder


@dataclass
class _Loaded:
    """One load of what the inputs of any number of portfolios are built from, shared and read-only."""

    as_of: dt.datetime
    point_in_time: bool
    end: dt.date
    instruments: dict[int, Instrument]  # held, traded (what-if) and benchmark instruments
    drivers: dict[int, Instrument]  # every price series loaded: drivers of the held instruments, benchmarks
    closes: dict[int, tuple[np.ndarray, np.ndarray]]
    fx: FxHistory
    current: dict[int, tuple[Decimal, dt.datetime | dt.date]]  # current price and its time
    rate: float  # continuously compounded risk-free rate for option pricing
    # Live only: instruments the feed watches, and the quote time before which their price counts as stale.
    watched: frozenset[int] = frozenset()
    tick_stale_before: dt.datetime | None = None


def _driver(instrument: Instrument) -> Instrument:
    """Return the instrument whose price series drives a position: a derivative's underlying, else itself."""
    if instrument.asset_class in DERIVATIVES and instrument.underlying_id:
        return instrument.underlying
    return instrument


def _drivers(instruments: Iterable[Instrument], benchmark: Instrument | None) -> dict[int, Instrument]:
    drivers = {_driver(i).pk: _driver(i) for i in instruments}
    if benchmark is not None:
        drivers.setdefault(benchmark.pk, benchmark)
    return drivers


def _load(
    *,
    held_ids: set[int],
    benchmark_ids: set[int],
    extra_instruments: Iterable[Instrument],
    as_of: dt.datetime | None,
    config: RiskConfig,
    history_days: int | None,
) -> _Loaded:
    """Read instruments, closes, FX and current prices once, for every portfolio that will be built from them.

    The history covers lookback + horizon + a margin of business days (or `history_days` + the margin).
    """
    point_in_time = as_of is not None
    as_of = as_of if point_in_time else timezone.now()
    end = as_of.date()
    extra_instruments = list(extra_instruments)
    wanted_ids = set(held_ids) | {i.pk for i in extra_instruments}
    instruments = {
        i.pk: i for i in Instrument.objects.filter(pk__in=wanted_ids | set(benchmark_ids)).select_related("underlying")
    }
    for instrument in extra_instruments:
        instruments.setdefault(instrument.pk, instrument)
    held = [instruments[pk] for pk in wanted_ids if pk in instruments]
    drivers = _drivers(held, None)
    for pk in benchmark_ids:
        if pk in instruments:
            drivers.setdefault(pk, instruments[pk])
    priced_ids = sorted({i.pk for i in held} | set(drivers))

    if history_days is None:
        history_days = int(config.lookback_days) + int(config.horizon_days)
    start = _history_start(end, history_days + HISTORY_MARGIN_DAYS)
    closes = _closes(drivers, start, end)
    fx = FxHistory(start, end)

    # Current prices: live quotes (not as of a past time), else the last close on or before as_of.
    current: dict[int, tuple[Decimal, dt.datetime | dt.date]] = {}
    if not point_in_time:
        for pk, price, ts in Quote.objects.filter(instrument_id__in=priced_ids).values_list(
            "instrument_id", "price", "ts"
        ):
            current[pk] = (price, ts)
    missing = [pk for pk in priced_ids if pk not in current]
    if missing:
        current.update(_last_closes(missing, end))
    watched: frozenset[int] = frozenset()
    tick_stale_before = None
    if not point_in_time:
        # Read, never create: building inputs does not write (the feed or the data-source page makes the row).
        feed = FeedState.objects.first()
        if feed is not None:
            watched = frozenset(feed.watched.values_list("pk", flat=True))
            tick_stale_before = as_of - dt.timedelta(seconds=feed.stale_after_seconds)
    return _Loaded(
        as_of=as_of,
        point_in_time=point_in_time,
        end=end,
        instruments=instruments,
        drivers=drivers,
        closes=closes,
        fx=fx,
        current=current,
        rate=continuous_rate(float(config.risk_free_rate)),
        watched=watched,
        tick_stale_before=tick_stale_before,
    )


def portfolio_inputs(
    *,
    portfolio: Portfolio,
    as_of: dt.datetime | None = None,
    extra_trades: Iterable[ExtraTrade] = (),
    config: RiskConfig | None = None,
    history_days: int | None = None,
) -> PortfolioInputs:
    """Return the holdings and aligned market data of a portfolio, live or as of a past time.

    The history covers lookback + horizon + a margin of business days (or `history_days` + the margin).
    """
    config = config or RiskConfig.get_solo()
    extra_trades = list(extra_trades)
    if as_of is not None:
        quantities = positions_as_of(portfolio=portfolio, as_of=as_of)
    else:
        quantities = _positions_live_many([portfolio.pk]).get(portfolio.pk, {})
    loaded = _load(
        held_ids=set(quantities),
        benchmark_ids={portfolio.benchmark_id} if portfolio.benchmark_id else set(),
        extra_instruments=[t.instrument for t in extra_trades],
        as_of=as_of,
        config=config,
        history_days=history_days,
    )
    return _build(portfolio=portfolio, quantities=quantities, extra_trades=extra_trades, loaded=loaded)


def portfolios_inputs(
    *,
    portfolios: Iterable[Portfolio],
    as_of: dt.datetime | None = None,
    config: RiskConfig | None = None,
    failures: dict[int, Exception] | None = None,
) -> tuple[list[PortfolioInputs], MarketData]:
    """Return the inputs of many portfolios built on one load of positions, prices and FX, and that shared load.

    Each portfolio's inputs are exactly what portfolio_inputs would return for it (the same holdings,
    warnings and its own MarketData: its drivers, benchmark and FX columns on its own dates), built from
    one query per table whatever the number of portfolios. The shared MarketData holds the union: every
    driver and benchmark series and an "FX:<CCY>/<BASE>" column for each currency and base currency in
    use, on the union of the dates; each portfolio's own dates are a subset of them (engine.batch uses
    them as the portfolio's calendar). With `failures` given, a portfolio whose inputs cannot be built is
    left out and its exception recorded there under its id; without it the exception propagates.
    """
    config = config or RiskConfig.get_solo()
    portfolios = list(portfolios)
    ids = [p.pk for p in portfolios]
    if as_of is not None:
        quantities = _positions_as_of_many(ids, as_of)
    else:
        quantities = _positions_live_many(ids)
    loaded = _load(
        held_ids={pk for held in quantities.values() for pk in held},
        benchmark_ids={p.benchmark_id for p in portfolios if p.benchmark_id},
        extra_instruments=(),
        as_of=as_of,
        config=config,
        history_days=None,
    )
    built: list[PortfolioInputs] = []
    for portfolio in portfolios:
        try:
            built.append(
                _build(portfolio=portfolio, quantities=quantities.get(portfolio.pk, {}), extra_trades=[], loaded=loaded)
            )
        except Exception as exc:
            if failures is None:
                raise
            failures[portfolio.pk] = exc
    pairs = {(h.currency, i.base_currency) for i in built for h in i.holdings if h.currency != i.base_currency}
    shared = _market_data(loaded.drivers, loaded.closes, loaded.fx, pairs=pairs, end=loaded.end)
    return built, shared


def _build(
    *, portfolio: Portfolio, quantities: dict[int, Decimal], extra_trades: list[ExtraTrade], loaded: _Loaded
) -> PortfolioInputs:
    """Return one portfolio's inputs from a load (_load) that covers its instruments and benchmark."""
    as_of, end = loaded.as_of, loaded.end
    base = portfolio.base_currency
    instruments = loaded.instruments
    current = loaded.current
    fx = loaded.fx
    benchmark = instruments.get(portfolio.benchmark_id) if portfolio.benchmark_id else None
    traded = [instruments.get(t.instrument.pk, t.instrument) for t in extra_trades]
    drivers = _drivers([*(instruments[pk] for pk in quantities), *traded], benchmark)

    warnings: list[str] = []
    stale_symbols: list[str] = []
    newest: list[dt.datetime] = []

    def note_price(symbol: str, when: dt.datetime | dt.date, instrument_id: int | None = None) -> None:
        newest.append(_as_datetime(when))
        when_date = when.date() if isinstance(when, dt.datetime) else when
        if symbol in stale_symbols:
            return
        if _stale(when_date, end):
            stale_symbols.append(symbol)
            warnings.append(WARN_STALE.format(symbol=symbol, date=when_date, days=STALE_AFTER_BUSINESS_DAYS))
        elif (
            # A symbol the feed watches should tick: a live price older than the feed's threshold is stale.
            instrument_id in loaded.watched
            and isinstance(when, dt.datetime)
            and loaded.tick_stale_before is not None
            and when < loaded.tick_stale_before
        ):
            stale_symbols.append(symbol)
            seconds = int((loaded.as_of - loaded.tick_stale_before).total_seconds())
            warnings.append(WARN_STALE_TICK.format(symbol=symbol, time=when.astimezone(dt.UTC), seconds=seconds))

    rate = loaded.rate
    fx_cache: dict[str, tuple[float, dt.date] | None] = {}

    def holding_for(instrument: Instrument, quantity: Decimal, price_override: Decimal | None = None):
        symbol = instrument.symbol
        if price_override is not None:
            price = (price_override, as_of)
        else:
            price = current.get(instrument.pk)
        if price is None:
            warnings.append(WARN_NO_PRICE.format(symbol=symbol, date=end))
            return None
        if instrument.currency not in fx_cache:
            fx_cache[instrument.currency] = fx.latest(instrument.currency, base)
            known = fx_cache[instrument.currency]
            if known is not None and instrument.currency != base:
                newest.append(_as_datetime(known[1]))
                if _stale(known[1], end):
                    warnings.append(
                        WARN_STALE_FX.format(
                            currency=instrument.currency, base=base, date=known[1], days=STALE_AFTER_BUSINESS_DAYS
                        )
                    )
                    stale_symbols.append(fx_symbol(instrument.currency, base))
        known = fx_cache[instrument.currency]
        if known is None:
            warnings.append(WARN_NO_FX.format(symbol=symbol, currency=instrument.currency, base=base, date=end))
            return None
        if price_override is None:
            note_price(symbol, price[1], instrument.pk)
        terms: dict = {}
        if instrument.asset_class in DERIVATIVES:
            underlying = instrument.underlying
            if underlying is not None:
                under = current.get(underlying.pk)
                if under is None:
                    warnings.append(WARN_NO_UNDERLYING_PRICE.format(symbol=symbol, underlying=underlying.symbol))
                    return None
                note_price(underlying.symbol, under[1], underlying.pk)
                terms["underlying"] = underlying.symbol
                terms["underlying_price"] = float(under[0])
            if instrument.expiry:
                days_left = (instrument.expiry - end).days
                if days_left < 0:
                    warnings.append(WARN_EXPIRED.format(symbol=symbol, expiry=instrument.expiry))
                terms["expiry_years"] = max(days_left, 0) / DAYS_A_YEAR
            if instrument.asset_class == AssetClass.OPTION:
                terms.update(
                    option_type=instrument.option_type,
                    strike=float(instrument.strike),
                    implied_vol=None,
                    rate=rate,
                )
        elif instrument.asset_class == AssetClass.BOND:
            terms.update(
                coupon_rate=float(instrument.coupon_rate or 0),
                coupon_frequency=int(instrument.coupon_frequency or 2),
                maturity_years=max((instrument.maturity - end).days, 0) / DAYS_A_YEAR,
                face_value=float(instrument.face_value) if instrument.face_value is not None else 100.0,
            )
        return Holding(
            key=symbol,
            asset_class=instrument.asset_class,
            quantity=float(quantity),
            multiplier=float(instrument.multiplier),
            price=float(price[0]),
            currency=instrument.currency,
            fx_rate=float(known[0]),
            fx_symbol=None if instrument.currency == base else fx_symbol(instrument.currency, base),
            **terms,
        )

    holdings: list[Holding] = []
    kept_instruments: dict[str, Instrument] = {}
    kept_quantities: dict[str, Decimal] = {}
    for pk in sorted(quantities, key=lambda k: instruments[k].symbol):
        holding = holding_for(instruments[pk], quantities[pk])
        if holding is not None:
            holdings.append(holding)
            kept_instruments[holding.key] = instruments[pk]
            kept_quantities[holding.key] = quantities[pk]
    extra: list[Holding] = []
    for trade, instrument in zip(extra_trades, traded, strict=True):
        holding = holding_for(instrument, trade.quantity, trade.price)
        if holding is not None:
            extra.append(holding)
            kept_instruments.setdefault(holding.key, trade.instrument)

    currencies = {h.currency for h in [*holdings, *extra]} - {base}
    market = _market_data(drivers, loaded.closes, fx, pairs={(c, base) for c in currencies}, end=end)
    return PortfolioInputs(
        portfolio_id=portfolio.pk,
        base_currency=base,
        as_of=as_of,
        point_in_time=loaded.point_in_time,
        holdings=holdings,
        market=market,
        benchmark=benchmark.symbol if benchmark is not None else None,
        inputs_as_of=max(newest) if newest else None,
        extra=extra,
        instruments=kept_instruments,
        quantities=kept_quantities,
        stale=bool(stale_symbols),
        stale_symbols=stale_symbols,
        warnings=warnings,
    )


def _market_data(
    drivers: dict[int, Instrument],
    closes: dict[int, tuple[np.ndarray, np.ndarray]],
    fx: FxHistory,
    *,
    pairs: set[tuple[str, str]],
    end: dt.date,
) -> MarketData:
    """Pivot closes and the FX series of `pairs` (currency, base) onto the union of their dates, NaN where missing.

    Driver columns come first in symbol order, then one "FX:<CCY>/<BASE>" column per pair in pair order.
    """
    ordered = sorted(drivers.values(), key=lambda i: i.symbol)
    parts = [closes[i.pk][0] for i in ordered if i.pk in closes]
    if pairs:
        parts.extend(d for d, _ in fx.pairs.values())
    dates = np.unique(np.concatenate(parts)) if parts else np.array([], dtype="datetime64[D]")
    symbols: list[str] = []
    columns: list[np.ndarray] = []
    for instrument in ordered:
        symbols.append(instrument.symbol)
        if instrument.pk in closes:
            d, c = closes[instrument.pk]
            columns.append(_on_dates(d, c, dates))
        else:
            columns.append(np.full(len(dates), np.nan))
    for currency, base in sorted(pairs):
        series = fx.series(currency, base, dates)
        symbols.append(fx_symbol(currency, base))
        columns.append(series if series is not None else np.full(len(dates), np.nan))
    prices = np.column_stack(columns) if columns else np.empty((len(dates), 0))
    return MarketData(dates=dates, symbols=tuple(symbols), prices=prices)


def price_history(*, instruments: Iterable[Instrument], end: dt.date, days: int) -> MarketData:
    """Return the daily closes of instruments over `days` business days up to `end`, on the union of dates."""
    by_pk = {i.pk: i for i in instruments}
    closes = _closes(by_pk, _history_start(end, days), end)
    ordered = sorted(by_pk.values(), key=lambda i: i.symbol)
    parts = [closes[i.pk][0] for i in ordered if i.pk in closes]
    dates = np.unique(np.concatenate(parts)) if parts else np.array([], dtype="datetime64[D]")
    columns = [_on_dates(*closes[i.pk], dates) if i.pk in closes else np.full(len(dates), np.nan) for i in ordered]
    prices = np.column_stack(columns) if columns else np.empty((len(dates), 0))
    return MarketData(dates=dates, symbols=tuple(i.symbol for i in ordered), prices=prices)
