"""WhatsApp Cloud API: the outbound client and the 24-hour window kept in Redis."""
