"""The columns each import kind reads, with a description and a sample file for pages and docs."""

from dataclasses import dataclass

from apps.portfolios.imports.result import ImportKind


@dataclass(frozen=True)
class ImportFormat:
    kind: str
    title: str
    description: str
    required: tuple[str, ...]
    optional: tuple[str, ...]
    sample: str
    alternative_header: str = ""

    @property
    def header(self) -> str:
        return ",".join(self.required + self.optional)


INSTRUMENT_REQUIRED = ("symbol", "name", "asset_class", "currency")
INSTRUMENT_OPTIONAL = (
    "exchange",
    "multiplier",
    "underlying",
    "option_type",
    "strike",
    "expiry",
    "coupon_rate",
    "coupon_frequency",
    "maturity",
    "face_value",
    "is_active",
)
PRICE_LONG_REQUIRED = ("symbol", "date", "close")
PRICE_VENDOR_REQUIRED = ("date", "close")
PRICE_OPTIONAL = ("open", "high", "low", "adj_close", "volume")
POSITION_REQUIRED = ("portfolio", "symbol", "quantity", "average_cost")
TRADE_REQUIRED = ("external_id", "portfolio", "symbol", "side", "quantity", "price", "traded_at")
TRADE_OPTIONAL = ("fees", "note")

FORMATS: dict[str, ImportFormat] = {
    ImportKind.INSTRUMENTS: ImportFormat(
        kind=ImportKind.INSTRUMENTS,
        title="Instruments",
        description=(
            "Creates or updates instruments by symbol. Options need underlying, option_type (C or P), strike "
            "and expiry; futures need expiry; bonds need maturity. An option's underlying may be defined on an "
            "earlier line of the same file. A column left out keeps the stored value; an empty multiplier is 1."
        ),
        required=INSTRUMENT_REQUIRED,
        optional=INSTRUMENT_OPTIONAL,
        sample=(
            "symbol,name,asset_class,currency,exchange,multiplier,underlying,option_type,strike,expiry,"
            "coupon_rate,coupon_frequency,maturity,face_value,is_active\n"
            "RELIANCE,Reliance Industries,equity,INR,NSE,1,,,,,,,,,true\n"
            "RELIANCE-C3000,Reliance 3000 call,option,INR,NSE,250,RELIANCE,C,3000,2030-12-31,,,,,true\n"
            "GSEC2033,7.26% GS 2033,bond,INR,NSE,1,,,,,0.0726,2,2033-08-22,100,true\n"
        ),
    ),
    ImportKind.PRICES: ImportFormat(
        kind=ImportKind.PRICES,
        title="Prices",
        description=(
            "Daily bars, upserted per symbol and date. Either the usual vendor export for one symbol "
            "(Date,Open,High,Low,Close,Adj Close,Volume; give the symbol separately) or the long layout "
            "symbol,date,close with optional open,high,low,adj_close,volume. Dates are ISO YYYY-MM-DD."
        ),
        required=PRICE_LONG_REQUIRED,
        optional=PRICE_OPTIONAL,
        sample=(
            "symbol,date,open,high,low,close,adj_close,volume\n"
            "RELIANCE,2024-01-02,2580,2610.5,2575,2602.3,2602.3,5123400\n"
            "RELIANCE,2024-01-03,2602,2620,2590.1,2611.85,2611.85,4876000\n"
        ),
        alternative_header="Date,Open,High,Low,Close,Adj Close,Volume",
    ),
    ImportKind.POSITIONS: ImportFormat(
        kind=ImportKind.POSITIONS,
        title="Positions (opening balances)",
        description=(
            "Sets holdings: for each line the difference between the file's quantity and the current position "
            "is booked as a position-import trade at the average cost. A line that matches the current quantity "
            "books nothing, so importing the same file again changes nothing. Negative quantities are short."
        ),
        required=POSITION_REQUIRED,
        optional=(),
        sample="portfolio,symbol,quantity,average_cost\nALPHA,RELIANCE,100,2450.5\nALPHA,TCS,-20,3810\n",
    ),
    ImportKind.TRADES: ImportFormat(
        kind=ImportKind.TRADES,
        title="Trades",
        description=(
            "Books each line as a trade. external_id makes it idempotent: a trade already booked is reported "
            "unchanged, the same id with other details is refused. traded_at is ISO 8601; a time without a "
            "zone is read as UTC."
        ),
        required=TRADE_REQUIRED,
        optional=TRADE_OPTIONAL,
        sample=(
            "external_id,portfolio,symbol,side,quantity,price,traded_at,fees,note\n"
            "BRK-0001,ALPHA,RELIANCE,BUY,10,2602.3,2024-01-02T09:20:00+05:30,12.5,opening\n"
            "BRK-0002,ALPHA,RELIANCE,SELL,4,2611.85,2024-01-03T10:05:00Z,5,\n"
        ),
    ),
}
