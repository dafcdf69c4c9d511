"""The audit page's layout of an event's detail and its before/after values (no database)."""

from hypothesis import given
from hypothesis import strategies as st

from apps.audit.templatetags.audit_tags import LONG, audit_text, detail_items


def test_a_batch_event_reads_as_its_figures_its_id_runs_and_a_table_of_its_trades():
    detail = {
        "source": "api",
        "booked": 3,
        "portfolios": ["ALPHA", "BETA"],
        "trade_ids": [[211033, 211034], [211040, 211040]],
        "trades": [
            {"id": 211033, "portfolio": "ALPHA", "side": "BUY"},
            {"id": 211034, "portfolio": "BETA", "side": "SELL", "note": "late"},
        ],
    }
    source, booked, portfolios, ids, trades = detail_items(detail)
    assert (source.key, source.text, booked.text, portfolios.text) == ("source", "api", "3", "ALPHA, BETA")
    assert ids.text == "211033–211034, 211040 (3 ids)" and ids.count is None
    assert trades.count == 2 and trades.columns == ["id", "portfolio", "side", "note"]
    assert trades.rows == [["211033", "ALPHA", "BUY", "—"], ["211034", "BETA", "SELL", "late"]]


@given(st.lists(st.integers(min_value=1, max_value=10**9), min_size=1, max_size=60, unique=True))
def test_id_runs_are_folded_when_there_are_many_and_count_every_id(starts):
    runs = [[start * 3, start * 3 + start % 2] for start in sorted(starts)]  # never touching
    (item,) = detail_items({"trade_ids": runs})
    ids = sum(last - first + 1 for first, last in runs)
    assert item.text.endswith(f"({ids:,} id{'s' if ids != 1 else ''})")
    assert item.count == (ids if len(runs) > LONG else None)


def test_a_long_list_is_folded_with_its_count_and_other_details_are_plain_text():
    (codes,) = detail_items({"portfolios": [f"CL{n}" for n in range(LONG + 1)]})
    assert codes.count == LONG + 1 and codes.text.startswith("CL0, CL1")
    (plain,) = detail_items({"trade_ids": [1, 2, 3]})  # ids, not runs
    assert (plain.text, plain.count) == ("1, 2, 3", None)
    assert detail_items(None) == detail_items({}) == []
    assert [(i.key, i.text) for i in detail_items("text")] == [("", "text")]


def test_before_and_after_values_read_as_one_line():
    assert audit_text({"roles": ["Admin", "Analyst"]}) == "roles: Admin, Analyst"
    assert audit_text({"roles": []}) == "roles: none"
    assert audit_text({"created": True, "is_active": False, "limit": None}) == "created: yes; is_active: no; limit: —"
    assert audit_text(None) == "—" and audit_text("10") == "10"
