"""The owner's weekly report in words: gettext keys (`locales/`, en and ru) in the owner's
language, numbers and dates by Babel in that language (the week is the salon's calendar week)."""

from __future__ import annotations

from dataclasses import dataclass

from babel.dates import format_date
from babel.numbers import format_decimal

from bot.i18n import Catalogs
from gateway.analytics.weekly import WeekReport

# The no-show question's groups (06_reminders_and_no_shows.sql) and their messages.
_REMINDER_GROUPS = {
    "answered a reminder": "report.no_shows.answered",
    "no answered reminder": "report.no_shows.unanswered",
}


@dataclass(frozen=True, slots=True)
class ReportText:
    subject: str
    text: str


def render(
    report: WeekReport, catalogs: Catalogs, locale: str, salon_name: str, link: str | None
) -> ReportText:
    _ = catalogs.get(locale)
    language = _.locale

    def number(value: float) -> str:
        return format_decimal(value, locale=language)

    def reason(code: str) -> str:
        # The handoff reasons the bot records (bot/flows/handoff.py), in words; a reason
        # without words yet (a newer bot) is shown as recorded.
        key = f"report.reason.{code}"
        said = _(key)
        return code if said == key else said

    start = format_date(report.week.start, format="long", locale=language)
    end = format_date(report.week.end, format="long", locale=language)
    subject = _("report.subject", salon=salon_name, week=report.week.name)
    lines = [_("report.period", start=start, end=end), ""]
    by_channel = report.bookings_by_channel()
    lines.append(_("report.bookings", n=number(sum(by_channel.values()))))
    lines += [_("report.item", name=channel, n=number(n)) for channel, n in by_channel.items()]
    lines.append(_("report.conversion"))
    for row in report.rows("conversion_by_channel"):
        percent = (
            number(row["conversion_percent"]) if row["conversion_percent"] is not None else "—"
        )
        lines.append(
            _(
                "report.conversion.channel",
                channel=row["channel"],
                booked=number(row["booked"]),
                started=number(row["started"]),
                percent=percent,
            )
        )
    lines.append(_("report.handoffs", n=number(report.handoffs())))
    lines += [
        _("report.item", name=reason(row["reason"]), n=number(row["handoffs"]))
        for row in report.rows("handoffs")
    ]
    lines.append(_("report.first_response"))
    for row in report.rows("first_response"):
        lines.append(
            _(
                "report.first_response.hour",
                hour=f"{row['hour']:02d}:00",
                n=number(row["replies"]),
                median=number(row["median_seconds"]),
                p90=number(row["p90_seconds"]),
            )
        )
    lines.append(_("report.no_shows"))
    for row in report.rows("reminders_and_no_shows"):
        lines.append(
            _(
                _REMINDER_GROUPS.get(row["reminder"], "report.no_shows.unanswered"),
                bookings=number(row["bookings"]),
                no_shows=number(row["no_shows"]),
                cancelled=number(row["cancelled"]),
            )
        )
    if link:
        lines += ["", _("report.dashboard", url=link)]
    # A heading with nothing under it says so.
    headings = {_(key) for key in ("report.conversion", "report.first_response", "report.no_shows")}
    shown: list[str] = []
    for n, line in enumerate(lines):
        shown.append(line)
        if _none_after(lines, n, headings):
            shown.append(_("report.none"))
    return ReportText(subject, "\n".join(shown))


def _none_after(lines: list[str], n: int, headings: set[str]) -> bool:
    following = lines[n + 1] if n + 1 < len(lines) else ""
    return lines[n] in headings and (following in headings or not following.startswith("  "))
