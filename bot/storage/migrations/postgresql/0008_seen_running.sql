-- PostgreSQL twin of ../0008_seen_running.sql: when a poll last saw each job still running.

ALTER TABLE jobs ADD COLUMN seen_running_at DOUBLE PRECISION;
