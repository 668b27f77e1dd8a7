"""Chatwoot: the API client, the help desk (who owns each conversation, delivering the mirror
and the handoff), and the files staff attach."""
