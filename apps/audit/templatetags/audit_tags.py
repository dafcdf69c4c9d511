"""Template helpers of the audit page: an event's detail laid out for a reader, not printed as a Python dict."""

from dataclasses import dataclass, field

from django import template

from apps.portfolios.templatetags.riskradar_format import MISSING

register = template.Library()

LONG = 12  # a list of more items than this is folded away (<details>), its count in the summary


@dataclass
class DetailItem:
    """One key of an event's detail: its value as one line of text, or as a table when it is a list of records;
    `count` is set when the value is folded away (how many items it holds)."""

    key: str
    text: str = ""
    count: int | None = None
    columns: list[str] = field(default_factory=list)
    rows: list[list[str]] = field(default_factory=list)


def _text(value) -> str:
    if value is None:
        return MISSING
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, dict):
        return "; ".join(f"{key}: {_text(item)}" for key, item in value.items())
    if isinstance(value, list | tuple):
        return ", ".join(_text(item) for item in value) if value else "none"
    return str(value)


@register.filter
def audit_text(value) -> str:
    """A before or after value as one line: {"roles": ["Admin"]} gives "roles: Admin"."""
    return _text(value)


def _id_runs(value) -> bool:
    """Whether a value is id runs as the batch booking records them: [[first, last], ...]."""
    return (
        isinstance(value, list)
        and bool(value)
        and all(
            isinstance(run, list) and len(run) == 2 and all(type(pk) is int for pk in run) and run[0] <= run[1]
            for run in value
        )
    )


def detail_items(detail) -> list[DetailItem]:
    """Lay out an event's detail: a list of records (a batch's trades) as a table, runs of ids (`trade_ids`) as
    "211033–216032 (5,000 ids)", any other value as text; long lists folded away with their count."""
    if detail in (None, "", {}, []):
        return []
    if not isinstance(detail, dict):
        return [DetailItem("", _text(detail))]
    items = []
    for key, value in detail.items():
        if key.endswith("_ids") and _id_runs(value):
            ids = sum(last - first + 1 for first, last in value)
            runs = ", ".join(str(first) if first == last else f"{first}–{last}" for first, last in value)
            items.append(
                DetailItem(
                    key, f"{runs} ({ids:,} id{'s' if ids != 1 else ''})", count=ids if len(value) > LONG else None
                )
            )
        elif isinstance(value, list) and value and all(isinstance(record, dict) for record in value):
            columns = list(dict.fromkeys(name for record in value for name in record))
            rows = [[_text(record.get(name)) for name in columns] for record in value]
            items.append(DetailItem(key, count=len(value), columns=columns, rows=rows))
        elif isinstance(value, list) and len(value) > LONG:
            items.append(DetailItem(key, _text(value), count=len(value)))
        else:
            items.append(DetailItem(key, _text(value)))
    return items


@register.inclusion_tag("audit/_detail.html")
def audit_detail(detail) -> dict:
    return {"items": detail_items(detail)}
