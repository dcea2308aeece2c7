"""SQLite storage: the database, its migrations and the repositories that own all SQL."""
