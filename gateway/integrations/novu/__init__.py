"""Novu: the API client, the workflows as code, and the ledger of notices Novu posts back."""
