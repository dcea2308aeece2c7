-- When a poll last saw each job still running (any process): a job found done records its run time as "longer than
-- that, shorter than now" for the learned poll plan, also when another process (or this one before a restart) made
-- that poll. NULL for jobs written before this migration, and for jobs not seen running yet.

ALTER TABLE jobs ADD COLUMN seen_running_at REAL;
