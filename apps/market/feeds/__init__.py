"""Market data feeds: the demo simulator, CSV replay and exchange hours; all write through services.ticks_ingest."""
