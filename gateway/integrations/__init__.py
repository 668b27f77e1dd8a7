"""The clients of the vendors Frontdesk talks to, one package per vendor."""
