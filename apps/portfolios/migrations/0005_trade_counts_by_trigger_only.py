from django.db import migrations

COUNT = "portfolios_tradecount"

# PostgreSQL: the insert trigger counts every insert again. The batch booking inserts its trades under its
# portfolios' locks (their ids are the booking order, which positions follow), so nothing tells the trigger to leave
# an insert to its caller any more (0004's riskradar.trade_counts_by_caller).
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


def by_trigger_only(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(ADD.format(count=COUNT, skip=""))


def by_caller(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(ADD.format(count=COUNT, skip=SKIP))


class Migration(migrations.Migration):
    dependencies = [("portfolios", "0004_trade_counts_by_caller")]

    operations = [migrations.RunPython(by_trigger_only, by_caller, elidable=False)]
