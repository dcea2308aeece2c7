"""Adapters for the upstream generation APIs. Imports nothing from discord, bot or cogs."""
