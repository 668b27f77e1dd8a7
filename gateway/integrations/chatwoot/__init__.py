"""Chatwoot: the API client, the help desk's state and mirror, and the files staff attach."""
