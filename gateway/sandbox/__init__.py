"""Faithful local stand-ins of the external services, for tests and `frontdesk demo`."""
