"""The gateway: where the IO lives, by role.

`app.py` (the composition root), `cli.py` and `settings.py` sit here; `pipeline/` carries webhooks
durably to the handlers and their messages out, `integrations/` holds one package per vendor,
`analytics/` the salon's facts and reports, `ops/` the operator's commands, and `sandbox/` the
stand-ins of the vendors.
"""
