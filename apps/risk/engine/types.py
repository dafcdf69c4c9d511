"""The engine's inputs and outputs: plain dataclasses of numbers and numpy arrays, no Django.

Conventions used everywhere in the engine:
- money is float64 in the portfolio's base currency unless a name says `_local`;
- losses are positive numbers: VaR and ES of a portfolio that can lose money are > 0;
- a confidence level is a fraction (0.99), a horizon is in trading days, volatility is annualised
  with 252 trading days a year unless a name says `daily`;
- times are passed in (`as_of`, years to expiry); the engine never reads a clock or a database.
"""

from dataclasses import dataclass, field

import numpy as np

TRADING_DAYS = 252


@dataclass(frozen=True)
class MarketData:
    """Aligned daily closes of every series a calculation needs, oldest first.

    `prices[t, j]` is the close of `symbols[j]` on `dates[t]`, NaN where the series has no value.
    Besides instruments, FX series that convert a currency into the base currency appear under the
    names that `Holding.fx_symbol` gives (e.g. "FX:USD/INR").
    """

    dates: np.ndarray  # datetime64[D], shape (T,)
    symbols: tuple[str, ...]  # length N
    prices: np.ndarray  # float64, shape (T, N)

    def column(self, symbol: str) -> int:
        return self.symbols.index(symbol)


@dataclass(frozen=True)
class Holding:
    """One position as the engine values it.

    `symbol` names the MarketData column that drives the position: the instrument itself for linear
    instruments and bonds, the underlying for options and futures (see `driver`).
    """

    key: str  # stable id for results, e.g. the instrument symbol
    asset_class: str  # equity, bond, future, option, crypto, fx, commodity, index
    quantity: float  # signed
    multiplier: float
    price: float  # current price, instrument currency
    currency: str
    fx_rate: float  # instrument currency -> base currency, current
    fx_symbol: str | None = None  # MarketData column of the currency -> base rate; None when same currency
    underlying: str | None = None  # MarketData column of the underlying (options, futures)
    underlying_price: float | None = None  # current underlying price (options, futures)
    option_type: str | None = None  # "C" or "P"
    strike: float | None = None
    expiry_years: float | None = None  # time to expiry from as_of, in years (options, futures)
    implied_vol: float | None = None  # None: the engine estimates it from the underlying's history
    rate: float = 0.0  # continuously compounded discount rate for option pricing
    coupon_rate: float | None = None  # bonds: annual coupon as a fraction
    coupon_frequency: int | None = None
    maturity_years: float | None = None
    face_value: float | None = None

    @property
    def driver(self) -> str:
        """The MarketData column whose moves revalue this position."""
        return self.underlying if self.asset_class in ("option", "future") and self.underlying else self.key

    @property
    def market_value(self) -> float:
        """Value in base currency (notional for futures and options: quantity x price x multiplier)."""
        return self.quantity * self.price * self.multiplier * self.fx_rate


@dataclass(frozen=True)
class EngineConfig:
    """Everything a calculation is parametrised by; built from RiskConfig by the service."""

    confidence_levels: tuple[float, ...] = (0.95, 0.99)
    horizon_days: int = 1
    lookback_days: int = 500
    mc_paths: int = 10_000
    mc_distribution: str = "normal"  # "normal" or "t"
    mc_t_dof: float = 5.0
    ewma_lambda: float = 0.94
    risk_free_rate: float = 0.065
    seed: int = 20_240_101
    max_fill_days: int = 5  # forward-fill at most this many missing days; longer gaps are reported
    min_history_days: int = 60  # fewer usable returns than this: the series is reported, not used
    var_limit_fraction: float = 0.05  # VaR (first level, 1 day) as a share of value that counts as full use
    score_weights: dict[str, float] = field(default_factory=dict)
    score_low: float = 0.3
    score_medium: float = 0.5
    score_high: float = 0.8
    methods: tuple[str, ...] = ("historical", "parametric", "cornish_fisher", "monte_carlo")
    include_stress: bool = True  # False: skip the hypothetical and historical stress tests (a quick figure)


@dataclass(frozen=True)
class VarFigure:
    method: str
    confidence: float
    horizon_days: int
    var: float
    es: float


@dataclass(frozen=True)
class PositionRisk:
    key: str
    asset_class: str
    currency: str
    market_value: float
    weight: float  # market value / gross exposure
    standalone_var: float
    marginal_var: float  # d VaR / d (exposure), per unit of base currency
    component_var: float  # Euler; components sum to the portfolio VaR
    incremental_var: float  # VaR with the position minus VaR without it


@dataclass(frozen=True)
class GreeksRow:
    underlying: str
    delta: float  # base currency per 1.0 move of the underlying price, x multiplier x quantity
    gamma: float
    vega: float  # per 1 vol point (0.01)
    theta: float  # per calendar day
    rho: float  # per 1% rate move
    delta_cash: float  # delta x underlying price, base currency


@dataclass(frozen=True)
class StressShock:
    """A hypothetical scenario: relative moves by asset class and currency, yield and vol shocks.

    `equity=-0.2` moves every equity, index, equity future and option underlying by -20%;
    `rates_bp=200` moves bond yields up 200 bp; `vol_multiplier=2` doubles implied vols;
    `currency={"INR": -0.1}` weakens the rupee 10% against every other currency;
    `symbols={"BTC-USD": -0.3}` overrides single series.
    """

    name: str
    equity: float = 0.0
    crypto: float = 0.0
    commodity: float = 0.0
    rates_bp: float = 0.0
    vol_multiplier: float = 1.0
    currency: dict[str, float] = field(default_factory=dict)
    symbols: dict[str, float] = field(default_factory=dict)
    description: str = ""


@dataclass(frozen=True)
class StressResult:
    name: str
    kind: str  # "hypothetical" or "historical"
    pnl: float  # base currency; negative is a loss
    pnl_fraction: float  # pnl / market value (gross when net is zero)
    detail: str = ""  # e.g. the window of a historical replay
    by_position: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class ScoreResult:
    score: float  # in [0, 1]
    severity: str  # NONE, LOW, MEDIUM, HIGH
    features: dict[str, float]  # each feature in [0, 1]
    weights: dict[str, float]
    missing: tuple[str, ...] = ()  # weighted features that were not supplied and counted as 0


@dataclass(frozen=True)
class PortfolioStats:
    annual_return: float
    annual_volatility: float
    ewma_volatility: float
    sharpe: float
    sortino: float
    max_drawdown: float  # a fraction, positive: 0.25 is a 25% fall from the peak
    current_drawdown: float
    beta: float | None
    correlation: float | None


@dataclass(frozen=True)
class RiskResult:
    """The full figure set of one portfolio at one time."""

    as_of: np.datetime64
    market_value: float
    gross_exposure: float
    var: list[VarFigure]
    stats: PortfolioStats | None
    positions: list[PositionRisk]
    by_asset_class: dict[str, float]  # component VaR (first level, historical) summed by asset class
    by_currency: dict[str, float]
    greeks: list[GreeksRow]
    stress: list[StressResult]
    score: ScoreResult
    scenario_days: int
    warnings: list[str]  # e.g. "TCS: 42 days of history (needs 60); left out of the scenarios"
