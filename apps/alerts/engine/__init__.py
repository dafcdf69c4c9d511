"""The trade surveillance engine: numpy only, arrays in and arrays out, no Django.

`surveillance` computes, for a whole batch of trades at once, the figures the trade rules and the anomaly
detector look at: each client's transaction velocity over a sliding window, the robust z-score of a
trade's notional against the client's own previous trades, symbol novelty and the detector's features.
`detector` fits and scores the multivariate detector (scikit-learn's IsolationForest).

The same functions serve per-trade evaluation, batch evaluation, dry runs and the benchmark
(apps.alerts.services, apps.alerts.dry_run, bench/surveillance.py), so they give the same answers.
"""
