"""Background tasks of surveillance (django-q2): one service call each.

The schedules (migration 0004) run evaluate_all every minute and housekeeping every 15 minutes; migration
0005 trains the anomaly detector every 6 hours. Tasks return plain numbers, so the worker's result rows
stay small.
"""

from apps.alerts import detector, notifications, services


def evaluate_all() -> dict[str, int]:
    """Evaluate every enabled rule over the desk; return how many alerts were raised, updated and resolved."""
    result = services.evaluate_all()
    return {
        "raised": len(result.raised),
        "updated": len(result.updated),
        "resolved": len(result.resolved),
        "suppressed": result.suppressed,
        "evaluated": result.evaluated,
    }


def evaluate_portfolios(portfolio_ids: list[int]) -> dict[str, int]:
    """Evaluate the limit and exposure rules for some portfolios (after their risk was recalculated)."""
    result = services.evaluate_portfolio_risk(portfolio_ids=portfolio_ids)
    return {"raised": len(result.raised), "updated": len(result.updated), "resolved": len(result.resolved)}


def housekeeping() -> dict[str, int]:
    """Expire limit increases past their expiry and delete old limit utilisation."""
    return services.alerts_housekeeping()


def notify_alert(alert_id: int, event: str) -> int:
    """Queue one delivery per channel that hears of the alert (raised or escalated); return how many."""
    return len(notifications.alert_notify(alert_id=alert_id, event=event))


def notify_alerts(alert_ids: list[int], event: str) -> int:
    """notify_alert for each of the alerts one evaluation raised (or escalated) together; return the deliveries."""
    return sum(len(notifications.alert_notify(alert_id=pk, event=event)) for pk in alert_ids)


def deliver_notification(attempt_id: int, event: str | None = None) -> str:
    """Send one notification attempt; return its status (SENT, FAILED, GAVE_UP, or "" when nothing was due)."""
    return notifications.attempt_deliver(attempt_id=attempt_id, event=event)


def requeue_overdue_notifications() -> int:
    """Queue again the notification attempts whose task or retry schedule was lost; return how many."""
    return notifications.attempts_requeue_overdue()


def detector_train() -> dict:
    """Fit the anomaly detector on recent trades and store it as the model in force (migration 0005: every 6 h)."""
    result = detector.detector_train()
    return {"version": result.version, "n_samples": result.n_samples, "message": result.message}
