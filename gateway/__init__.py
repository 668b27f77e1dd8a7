"""The gateway: webhooks in, durable queues, workers, outbox, operations. IO lives here."""
