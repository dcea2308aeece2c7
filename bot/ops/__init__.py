"""Operations: health and metrics over HTTP, structured logs, spending and budgets, alerts, provider pauses and
backups. Nothing here is needed to run a job; the engine calls in through small hooks."""
