"""Benchmarks of the gateway against bare aiohttp, on loopback (`python -m bench --help`)."""
