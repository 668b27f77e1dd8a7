"""Telegram Bot API: the outbound client."""
