"""Metabase: syncing the salon's questions and dashboard, and signed embedding."""
