"""Everything the bot shows on Discord, built from plain values: job messages, embeds, texts and reports."""
