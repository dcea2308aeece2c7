"""Slash commands, views and modals: the Discord surface. Each command parses, defers and hands off to bot/."""
