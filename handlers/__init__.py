"""One module per source: provider payloads become the bot's events here."""
