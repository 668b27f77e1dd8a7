"""How Novu's steps read their controls (Liquid variables, conditions), how it signs what an
HTTP step posts, its error answers, and a run of a workflow."""

import hashlib
import hmac
import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiohttp import web

JSON = dict[str, Any]
STATIC_DIR = Path(__file__).parent.parent / "static"
STEP_TYPES = frozenset(
    {"delay", "email", "sms", "http_request", "chat", "in_app", "push", "digest", "throttle"}
)
# ResourceOriginEnum (@novu/shared): what an update's `origin` must be.
ORIGINS = frozenset({"novu-cloud", "novu-cloud-v1", "external"})
# A new workflow's preferences as Novu reads them back ({user, default}: every channel on).
DEFAULT_PREFERENCES: JSON = {
    "user": None,
    "default": {
        "all": {"enabled": True, "readOnly": False},
        "channels": {
            channel: {"enabled": True} for channel in ("email", "sms", "in_app", "chat", "push")
        },
    },
}
# PushProviderIdEnum (packages/shared/src/consts/providers/provider.enum.ts, 74a2e9a): the
# subscriber channels a push step sends to.
PUSH_PROVIDERS = frozenset(
    {"fcm", "apns", "expo", "one-signal", "pushpad", "push-webhook", "pusher-beams"}
)
# DelayControl's regular units (TimeUnitEnum; DigestUnitEnum in packages/shared/src/entities/
# step/index.ts, 74a2e9a, has the same values).
DELAY_UNITS = frozenset({"seconds", "minutes", "hours", "days", "weeks", "months"})
# The HTTP request step's default timeout, in milliseconds (`timeout` control).
HTTP_STEP_TIMEOUT_MS = 5000
_LIQUID = re.compile(r"\{\{\s*([\w.]+)\s*\}\}")


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _error(status: int, message: str, path: str) -> web.Response:
    body = {"statusCode": status, "timestamp": _iso(datetime.now(UTC)), "path": path}
    return web.json_response(body | {"message": message}, status=status)


def _invalid(path: str, errors: dict[str, tuple[str, Any]]) -> web.Response:
    """A 422 in Novu's shape for a body that fails its DTO's validation: `errors` by field, each
    with its `messages` and the `value` given (docs/api-reference/errors.mdx)."""
    body = {
        "statusCode": 422,
        "timestamp": _iso(datetime.now(UTC)),
        "path": path,
        "message": "Validation Error",
        "errors": {
            field: {"messages": [message], "value": value}
            for field, (message, value) in errors.items()
        },
    }
    return web.json_response(body, status=422)


def novu_signature(secret: str, body: JSON, at_ms: int) -> str:
    """`Novu-Signature` as Novu's worker writes it: `t=<ms>,v1=<hex HMAC-SHA256 of
    "<t>.<JSON.stringify(body)>" with the environment's secret key>` (novuhq/novu
    libs/application-generic/src/utils/hmac.ts, `buildNovuSignatureHeader`). Written here and
    not taken from the gateway, so that a bug in either side's signing shows."""
    text = f"{at_ms}.{_stringify(body)}"
    digest = hmac.new(secret.encode(), text.encode(), hashlib.sha256).hexdigest()
    return f"t={at_ms},v1={digest}"


def _stringify(value: Any) -> str:
    """JSON.stringify: no spaces, characters as they are."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _lookup(context: JSON, path: str) -> Any:
    value: Any = context
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def render(template: str, context: JSON) -> str:
    """Liquid's `{{ a.b }}`, which is all Frontdesk's workflows use."""

    def value(match: re.Match[str]) -> str:
        found = _lookup(context, match.group(1))
        return "" if found is None else str(found)

    return _LIQUID.sub(value, template)


def runs(condition: Any, context: JSON) -> bool:
    """Whether a step runs: a step condition (`controlValues.skip`) says when it RUNS, true
    runs it and false skips it; no condition runs it. novuhq/novu apps/worker/src/app/workflow/
    usecases/send-message/execute-http-request-step.usecase.ts (57973eb):
    `evaluateSkipCondition` returns `!result`; construct-framework-workflow.usecase.ts
    (4fae506): "The Step Conditions in the Dashboard control the step execution, that's why we
    need to invert the result"."""
    if not condition:
        return True
    return holds(condition, context)


def compile_controls(controls: JSON, context: JSON) -> JSON:
    """The HTTP request step's controls as Novu's worker renders them: Liquid over their JSON
    text, parsed back; when that is no longer JSON (a quote in a value) the controls go out
    unrendered (execute-http-request-step.usecase.ts, `compileControlValues`)."""
    rendered = render(_stringify(controls), context)
    try:
        compiled = json.loads(rendered)
    except json.JSONDecodeError:
        return controls
    return compiled if isinstance(compiled, dict) else controls


def holds(condition: Any, context: JSON) -> bool:
    """JSON logic's `==` and `!=` on `{"var": path}` (what the workflows' `skip` use: e.g.
    `{"==": [{"var": "steps.in-app.read"}, false]}`, an in-app message not read yet)."""
    if not isinstance(condition, dict) or not condition:
        return False
    (operator, operands), *_ = condition.items()
    left, right = (_lookup(context, o["var"]) if isinstance(o, dict) else o for o in operands)
    left = "" if left is None else left
    return bool(left == right) if operator == "==" else bool(left != right)


@dataclass
class Run:
    """One accepted trigger: a workflow for one subscriber."""

    id: int
    workflow: str
    transaction: str
    subscriber: str
    payload: JSON
    steps: list[JSON]
    next_step: int = 0
    due: datetime | None = None  # when the next step may run
    status: str = "pending"  # pending | completed | cancelled | failed
    log: list[str] = field(default_factory=list)
    # The in-app messages its steps put in the feed, by step id (their seen/read state is what
    # later steps' conditions read).
    messages: dict[str, JSON] = field(default_factory=dict)


def step_results(run: Run) -> JSON:
    """`steps.<stepId>` as a step condition reads it: an in-app step's result is its message's
    seen and read state at the time the condition is evaluated. Novu's worker reads it from the
    message when it runs a later step (apps/worker/src/app/workflow/usecases/execute-bridge-job/
    execute-bridge-job.usecase.ts, 4fae506: `mapState`, case 'in_app': `seen`, `read`,
    `lastSeenDate`, `lastReadDate` of the job's message, false/null when there is none), and the
    dashboard workflow's steps are given those results as `steps[stepId]`
    (apps/api/src/app/environments-v1/usecases/construct-framework-workflow/
    construct-framework-workflow.usecase.ts, 013ebab: `fullPayloadForRender.steps`)."""
    return {
        step: {
            "seen": bool(message.get("seen")),
            "read": bool(message.get("read")),
            "lastSeenDate": message.get("lastSeenDate"),
            "lastReadDate": message.get("lastReadDate"),
        }
        for step, message in run.messages.items()
    }
