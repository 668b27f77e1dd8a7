"""`frontdesk setup`'s Chatwoot step: one API-channel inbox per messenger, posting to the
gateway's Chatwoot webhook; the WhatsApp one with Chatwoot's reply window.

Chatwoot's inboxes API (app/controllers/api/v1/accounts/inboxes_controller.rb): `GET
/inboxes` lists them (`{"payload": [...]}`), `POST /inboxes` with `{"name", "channel": {"type":
"api", "webhook_url", "additional_attributes"}}` creates one, `PATCH /inboxes/{id}` with
`{"channel": {...}}` changes it (`update_channel`, Channel::Api::EDITABLE_ATTRS). An API inbox
shows its `webhook_url` and `additional_attributes` (app/views/api/v1/models/
_inbox.json.jbuilder). Creating and changing inboxes takes an administrator's token
(app/policies/inbox_policy.rb: `create?`, `update?`).

The reply window: `additional_attributes.agent_reply_time_window`, integer hours, settable
through the API only, merged into what the channel has (contracts/vendor-behaviour.md,
chatwoot-whatsapp-telegram.md §1.3, `Conversations::MessageWindowService`): 24 on the WhatsApp
inbox, so agents see WhatsApp's 24-hour window in Chatwoot. The `chatwoot.openapi.json` spec
leaves these attributes free-form. Older Chatwoot versions edit only `webhook_url` and
`hmac_mandatory` of an API channel (Channel::Api::EDITABLE_ATTRS): there the window is not
kept, and setup plans to set it on every run.

An inbox id in the settings is verified (it must exist) and its webhook put right; without
one, the inbox of the expected name is found, else created, and its id is reported for
CHATWOOT_<CHANNEL>_INBOX_ID.
"""

from __future__ import annotations

from typing import Any

import httpx

from gateway.ops.setup_steps import TIMEOUT, Step, StepFailed, Target
from gateway.salon_settings import ChatwootSettings

# What setup loads a salon with when Chatwoot is configured but no inbox id is given yet (the
# settings require one): Chatwoot's ids start at 1, so 0 is never an inbox.
NEW_INBOX = 0
# WhatsApp's customer service window, in hours: "Set 24 on the WhatsApp API inbox"
# (contracts/chatwoot-whatsapp-telegram.md §1.3).
WHATSAPP_REPLY_WINDOW = 24
_LABELS = {"telegram": "Telegram", "whatsapp": "WhatsApp"}


def inbox_name(channel: str, salon_id: str | None) -> str:
    """ "Telegram (gateway)" as the README's manual steps name it; a registry salon's carries
    its id, since several salons may share one Chatwoot account."""
    return f"{_LABELS[channel]} ({salon_id or 'gateway'})"


def chatwoot_steps(chatwoot: ChatwootSettings, target: Target) -> list[Step]:
    """One step per messenger the salon has on."""
    channels = [
        channel
        for channel in ("telegram", "whatsapp")
        if getattr(target.salon, channel) is not None
    ]
    return [_InboxStep(chatwoot, target, channel).step() for channel in channels]


class _InboxStep:
    def __init__(self, chatwoot: ChatwootSettings, target: Target, channel: str) -> None:
        self.chatwoot = chatwoot
        self.target = target
        self.channel = channel
        self.variable = f"CHATWOOT_{channel.upper()}_INBOX_ID"
        given = getattr(chatwoot, f"{channel}_inbox_id")
        self.given: int | None = None if given in (None, NEW_INBOX) else int(given)
        self.name = inbox_name(channel, target.salon_id)
        self.found: dict[str, Any] | None = None

    def step(self) -> Step:
        return Step(f"chatwoot {self.channel} inbox", self.apply, self.inspect)

    def wanted(self) -> dict[str, Any]:
        url = self.target.url("chatwoot")
        if self.chatwoot.webhook_token is not None:
            # Before Chatwoot 4.13 (unsigned webhooks) the URL ends with the token.
            url += f"/{self.chatwoot.webhook_token.get_secret_value()}"
        channel: dict[str, Any] = {"webhook_url": url}
        if self.channel == "whatsapp":
            channel["additional_attributes"] = {"agent_reply_time_window": WHATSAPP_REPLY_WINDOW}
        return channel

    def changes(self, inbox: dict[str, Any]) -> dict[str, Any]:
        wanted = self.wanted()
        changes: dict[str, Any] = {}
        if inbox.get("webhook_url") != wanted["webhook_url"]:
            changes["webhook_url"] = wanted["webhook_url"]
        window = wanted.get("additional_attributes")
        current = inbox.get("additional_attributes") or {}
        if window and any(current.get(k) != v for k, v in window.items()):
            changes["additional_attributes"] = window
        return changes

    async def inspect(self) -> str | None:
        listed = await self._call("GET", "/inboxes")
        inboxes = [i for i in listed.get("payload") or [] if isinstance(i, dict)]
        if self.given is not None:
            self.found = next((i for i in inboxes if i.get("id") == self.given), None)
            if self.found is None:
                raise StepFailed(f"inbox {self.given} ({self.variable}) is not in the account")
        else:
            self.found = next(
                (
                    i
                    for i in inboxes
                    if i.get("name") == self.name and i.get("channel_type") == "Channel::Api"
                ),
                None,
            )
        if self.found is None:
            return f"create the API inbox {self.name!r} posting to {self.wanted()['webhook_url']}"
        self._report(int(self.found["id"]))
        changes = self.changes(self.found)
        return f"inbox {self.found['id']}: set {', '.join(changes)}" if changes else None

    async def apply(self) -> str:
        if self.found is None:
            body = {"name": self.name, "channel": {"type": "api", **self.wanted()}}
            created = await self._call("POST", "/inboxes", body)
            self._report(int(created["id"]))
            return f"created inbox {created['id']} {self.name!r}"
        changes = self.changes(self.found)
        await self._call("PATCH", f"/inboxes/{self.found['id']}", {"channel": changes})
        return f"inbox {self.found['id']}: set {', '.join(changes)}"

    def _report(self, inbox_id: int) -> None:
        if inbox_id != self.given:
            self.target.found[self.variable] = str(inbox_id)

    async def _call(
        self, method: str, path: str, body: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        url = f"{self.chatwoot.url}/api/v1/accounts/{self.chatwoot.account_id}{path}"
        headers = {"api_access_token": self.chatwoot.api_token.get_secret_value()}
        async with httpx.AsyncClient(timeout=TIMEOUT) as http:
            try:
                response = await http.request(method, url, headers=headers, json=body)
            except httpx.HTTPError as exc:
                raise StepFailed(f"Chatwoot unreachable: {type(exc).__name__}") from None
        if response.status_code in (401, 403) and method != "GET":
            raise StepFailed(
                f"Chatwoot refused: HTTP {response.status_code} (inboxes are created and "
                "changed with an administrator's token)"
            )
        if response.status_code != 200:
            raise StepFailed(f"Chatwoot refused: HTTP {response.status_code}")
        try:
            answer = response.json()
        except ValueError:
            raise StepFailed("Chatwoot answered something that is not JSON") from None
        if not isinstance(answer, dict):
            raise StepFailed("Chatwoot answered something that is not a JSON object")
        return answer
