"""Channel-agnostic conversation logic: events in, replies out. No framework, no network."""
