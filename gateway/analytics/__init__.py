"""The salon's analytics: facts as handlers see them, the PostgreSQL store, its SQL and CLI."""
