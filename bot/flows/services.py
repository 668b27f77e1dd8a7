"""Services & prices: the salon's catalogue, grouped by category, in the client's language."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

from babel import Locale
from babel.numbers import format_currency

from bot.catalogue import Service
from bot.i18n import Translator


def price_text(service: Service, locale: str) -> str | None:
    """2500 RUB as «2 500 ₽» in Russian and «RUB 2,500» in English; words stay as written."""
    if not service.price:
        return None
    try:
        amount = Decimal(service.price)
    except InvalidOperation:
        return service.price
    if not service.currency:
        return service.price
    pattern = Locale.parse(locale).currency_formats["standard"].pattern
    if amount == amount.to_integral():
        # A salon's prices are whole: no ",00".
        pattern = re.sub(r"\.0+", "", pattern)
    text = format_currency(
        amount, service.currency.upper(), format=pattern, locale=locale, currency_digits=False
    )
    # "RUB2,500" reads badly; a code before the number gets a (no-break) space.
    return re.sub(r"^([A-Z]{3})(\d)", "\\1\u00a0\\2", text)


def catalogue_text(_: Translator, services: tuple[Service, ...]) -> str:
    lines = [_("services.title")]
    category: str | None = None
    for service in services:
        if service.category != category and service.category:
            lines += ["", service.category]
        category = service.category
        price = price_text(service, _.locale)
        minutes = _.plural("services.minutes", "services.minutes.plural", service.minutes)
        if price:
            lines.append(
                _("services.item.priced", title=service.title, minutes=minutes, price=price)
            )
        else:
            lines.append(_("services.item", title=service.title, minutes=minutes))
    return "\n".join(lines)
