"""A client's typed answer to a question that changes something for good ("Cancel this
booking?"). Only an unambiguous yes counts: "no", a question or a new request never does."""

from __future__ import annotations

from bot.typed import plain

_YES = frozenset(
    {
        "да",
        "да отменить",
        "да отмените",
        "да отменяйте",
        "да отменить запись",
        "да отмените запись",
        "отменить",
        "отмените",
        "отменяйте",
        "отменить запись",
        "отмените запись",
        "yes",
        "yes cancel",
        "yes cancel it",
        "yes cancel the booking",
        "yes cancel my booking",
        "cancel",
        "cancel it",
        "cancel the booking",
        "cancel my booking",
    }
)
_POLITE = frozenset({"please", "пожалуйста", "плиз"})
_NO_START = frozenset({"нет", "не", "no", "nope", "not", "don", "dont", "wait", "стоп", "stop"})
_KEEP = ("оставить", "оставьте", "keep", "не отменя", "don t cancel", "do not cancel")
_MOVE = ("перенес", "перенест", "перенос", "другое время", "другой день", "move", "reschedul")


def is_yes(text: str) -> bool:
    """An unambiguous yes: "да", "yes, cancel", "да, отменить, пожалуйста"; never a question."""
    if "?" in text:
        return False
    words = [word for word in plain(text).split() if word not in _POLITE]
    return " ".join(words) in _YES


def is_no(text: str) -> bool:
    """A plain no or "keep it": "нет", "no thanks", "не надо", "оставьте"."""
    words = plain(text)
    first = words.split(" ", 1)[0] if words else ""
    return first in _NO_START or any(keep in words for keep in _KEEP)


def asks_to_move(text: str) -> bool:
    """Asks for another time instead: "можно перенести?", "can I move it to Friday?"."""
    words = plain(text)
    return any(move in words for move in _MOVE)
