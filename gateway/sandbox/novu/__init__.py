"""The Novu stand-in (see `sandbox.py`): `steps` (controls, conditions, signing, runs),
`worker` (the environment's state, its clock and the worker), `api` (events, subscribers,
workflows), `sandbox` (the app and the demo page)."""

from gateway.sandbox.novu.sandbox import NovuSandbox
from gateway.sandbox.novu.steps import (
    HTTP_STEP_TIMEOUT_MS,
    Run,
    compile_controls,
    holds,
    novu_signature,
    render,
    runs,
)

__all__ = [
    "HTTP_STEP_TIMEOUT_MS",
    "NovuSandbox",
    "Run",
    "compile_controls",
    "holds",
    "novu_signature",
    "render",
    "runs",
]
