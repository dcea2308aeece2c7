-- PostgreSQL twin of ../0004_job_locales.sql: the Discord locales a job's texts are rendered in later.

ALTER TABLE jobs ADD COLUMN user_locale TEXT;
ALTER TABLE jobs ADD COLUMN guild_locale TEXT;
