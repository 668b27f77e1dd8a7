"""Flows: each turns (session, event) into replies and the next session."""
