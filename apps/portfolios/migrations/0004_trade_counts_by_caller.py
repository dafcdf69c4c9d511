from django.db import migrations

COUNT = "portfolios_tradecount"

# PostgreSQL: the insert trigger leaves the count to the inserting transaction when it has set
# riskradar.trade_counts_by_caller to "on" for the insert (SET LOCAL; the batch booking, which inserts its trades
# before it locks their portfolios and counts them once it holds the locks: see
# apps/portfolios/services.py: _trades_insert_uncounted). Every other insert is counted as before.
ADD = """
    CREATE OR REPLACE FUNCTION {count}_add() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        {skip}INSERT INTO {count} (portfolio_id, instrument_id, trades)
        SELECT portfolio_id, instrument_id, count(*) FROM new_rows GROUP BY 1, 2 ORDER BY 1, 2
        ON CONFLICT (portfolio_id, instrument_id) DO UPDATE SET trades = {count}.trades + EXCLUDED.trades;
        RETURN NULL;
    END $$
"""
SKIP = """IF current_setting('riskradar.trade_counts_by_caller', true) = 'on' THEN
            RETURN NULL;
        END IF;
        """


def by_caller(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(ADD.format(count=COUNT, skip=SKIP))


def by_trigger_only(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(ADD.format(count=COUNT, skip=""))


class Migration(migrations.Migration):
    dependencies = [("portfolios", "0003_trade_counts")]

    operations = [migrations.RunPython(by_caller, by_trigger_only, elidable=False)]
