"""The composition root's steps, in the order `gateway.app` runs them when the app starts.

`runtime` (what the routes and the steps share), `services` (the salon's clients at each
vendor, one factory per integration), `conversations` (the handlers and the bot they drive),
`outflow` (what the outbox delivers through, at which pace) and `background` (the worker pool
and the periodic reconciliations), together `running` (one salon at work). Then the salons
served: `served` (the environment's and the registry's, each with its own runtime),
`registry_watch`, and their routes (`routes`, `dispatch`, `whatsapp_numbers`). Nothing here
touches the network when called.
"""
