"""The durable pipeline: webhooks in, Redis streams, workers, outbox, sessions and dead letters."""
