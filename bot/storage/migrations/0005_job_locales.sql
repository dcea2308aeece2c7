-- Languages: the Discord locales a job's texts are rendered in later (by the outbox, maybe in another process).
-- user_locale: the requester's (ephemeral messages, DMs); guild_locale: the server's (the public job message).
-- NULL for jobs written before this migration: they render in English.

ALTER TABLE jobs ADD COLUMN user_locale TEXT;
ALTER TABLE jobs ADD COLUMN guild_locale TEXT;
