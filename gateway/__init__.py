"""The gateway: where the IO lives, by role.

`app.py` (the composition root, its steps in `wiring/`), `cli.py`, `settings.py` (the process's)
and `salon_settings.py` (one salon's, a section per integration) sit here; `pipeline/` carries
webhooks durably to the handlers and their messages out, `integrations/` holds one package per
vendor, `analytics/` the salon's facts and reports, `ops/` the operator's commands, and `sandbox/`
the stand-ins of the vendors.
"""
