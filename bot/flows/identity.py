"""One client across messengers, as the client sees it: My bookings says which other
messenger's visits it shows, "This is not me" takes this chat out of the link (a button, or
typed in English or Russian), "Reminders here" chooses where notices go. The link itself is the
gateway's (gateway/pipeline/identity.py); a turn only asks for the change (`Turn.unlink`,
`Turn.prefer`).
"""

from __future__ import annotations

import re

from bot.events import Channel
from bot.flows import menu
from bot.flows.turn import Context, Turn
from bot.i18n import Translator
from bot.replies import Choice
from bot.typed import plain

UNLINK = "i:x"  # "This is not me"
HERE = "i:h"  # "Reminders here"
CHOICES = (UNLINK, HERE)

NAMES = {Channel.TELEGRAM: "Telegram", Channel.WHATSAPP: "WhatsApp"}

# "This is not me" and its everyday variants, read after `plain` (no punctuation, one case):
# "it's not me", "that is not me", "not my bookings", "это не я", "ето не я", "не мои записи".
_NOT_ME = re.compile(
    r"(?:(?:this|that|it)(?: s| is|s)? )?(?:is )?(?:not|isnt|isn t|aint) "
    r"(?:me|mine|my (?:bookings?|visits?))"
    r"|(?:это |ето |эт )?не (?:я|мои(?: записи| визиты)?|моё|мое|моя запись)"
)


def is_not_me(text: str) -> bool:
    """Whether typed text says the linked visits are not the client's."""
    return _NOT_ME.fullmatch(plain(text)) is not None


def messengers(linked: tuple[Channel, ...]) -> str:
    return ", ".join(NAMES[channel] for channel in linked)


def linked_line(_: Translator, linked: tuple[Channel, ...]) -> str:
    """My bookings' line under the list: where the other visits come from."""
    return _("identity.linked", messengers=messengers(linked))


def linked_choices(_: Translator) -> tuple[Choice, ...]:
    return (Choice(HERE, _("identity.here")), Choice(UNLINK, _("identity.not_me")))


def answer(ctx: Context, choice: str) -> Turn:
    """A tap on "This is not me" or "Reminders here" (or the words for the first)."""
    _ = ctx._
    linked = ctx.elsewhere.channels
    if not linked:
        # Not linked (any more): an old button.
        return ctx.reply(menu.menu(_, _("choice.stale")), menu.STEP)
    if choice == UNLINK:
        ctx.update(viewing=None)
        text = _("identity.unlinked", messengers=messengers(linked))
        turn = ctx.reply(menu.menu(_, text), menu.STEP)
        return Turn(turn.replies, turn.session, unlink=True)
    text = _("identity.here.done")
    turn = ctx.reply(menu.menu(_, text), menu.STEP)
    return Turn(turn.replies, turn.session, prefer=True)
