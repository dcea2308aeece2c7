"""The job engine: start and cancel, leased steps in lanes that follow upstream jobs, and the Discord outbox."""
