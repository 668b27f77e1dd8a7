"""Catalogs: complete in both languages, loadable without compiled `.mo` files."""

from __future__ import annotations

import shutil
import string
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.pofile import read_po

from bot.i18n import SUPPORTED, Catalogs

LOCALES = Path(__file__).resolve().parents[2] / "locales"


def read(locale: str, directory: Path = LOCALES) -> Catalog:
    with (directory / locale / "LC_MESSAGES" / "messages.po").open("rb") as handle:
        return read_po(handle, locale=locale)


def messages(locale: str) -> dict[str, str]:
    """Singular messages, key to text."""
    return {str(m.id): str(m.string) for m in read(locale) if m.id and not m.pluralizable}


def plurals(locale: str) -> dict[str, tuple[str, ...]]:
    return {str(m.id[0]): tuple(m.string) for m in read(locale) if m.pluralizable}


@pytest.fixture
def sources_only(tmp_path: Path) -> Path:
    """A copy of the catalogs with the compiled `.mo` files removed."""
    directory = tmp_path / "locales"
    shutil.copytree(LOCALES, directory)
    for compiled in directory.rglob("*.mo"):
        compiled.unlink()
    return directory


def test_both_catalogs_have_exactly_the_same_keys() -> None:
    assert set(messages("ru")) == set(messages("en"))
    assert set(plurals("ru")) == set(plurals("en"))
    assert len(messages("en")) > 10


def test_russian_plurals_have_three_forms() -> None:
    minutes = Catalogs(LOCALES).get("ru")
    forms = [
        minutes.plural("services.minutes", "services.minutes.plural", n) for n in (1, 3, 5, 21)
    ]
    assert forms == ["1 минута", "3 минуты", "5 минут", "21 минута"]
    assert all(len(forms) == 3 for forms in plurals("ru").values())


@pytest.mark.parametrize("locale", SUPPORTED)
def test_no_translation_is_empty_or_fuzzy(locale: str) -> None:
    catalog = read(locale)
    assert [m.id for m in catalog if m.id and not str(m.string).strip()] == []
    assert [m.id for m in catalog if m.id and m.fuzzy] == []


@pytest.mark.parametrize("locale", SUPPORTED)
def test_placeholders_match_across_languages(locale: str) -> None:
    def fields(text: str) -> set[str]:
        return {name for _, name, _, _ in string.Formatter().parse(text) if name}

    english = messages("en")
    for key, text in messages(locale).items():
        assert fields(text) == fields(english[key]), key


def test_greetings_come_from_the_catalogs() -> None:
    catalogs = Catalogs(LOCALES)
    assert catalogs.locales == ("ru", "en")
    russian = catalogs.get("ru")("menu.greeting.named", name="Ольга", salon="Studio Nord")
    english = catalogs.get("en")("menu.greeting.named", name="Anna", salon="Studio Nord")
    assert russian == "Здравствуйте, Ольга! Добро пожаловать в Studio Nord. Чем могу помочь?"
    assert english == "Hello, Anna! Welcome to Studio Nord. How can I help you today?"
    assert catalogs.get("ru")("menu.book") == "📅 Записаться"


def test_without_mo_files_the_po_files_are_compiled_in_memory(sources_only: Path) -> None:
    assert list(sources_only.rglob("*.mo")) == []
    catalogs = Catalogs(sources_only)
    assert catalogs.locales == ("ru", "en")
    for locale in SUPPORTED:
        translate = catalogs.get(locale)
        for key, text in messages(locale).items():
            assert translate(key) == text
    assert catalogs.get("ru")("menu.greeting", salon="X").startswith("Здравствуйте!")


def test_a_missing_locale_falls_back_to_the_other(sources_only: Path) -> None:
    shutil.rmtree(sources_only / "ru")
    catalogs = Catalogs(sources_only, default_locale="ru")
    assert catalogs.locales == ("en",)
    assert catalogs.resolve("ru", "ru-RU") == "en"
    assert catalogs.get("ru")("menu.prompt") == "How can I help you?"


def test_a_missing_locales_directory_does_not_stop_the_bot(tmp_path: Path) -> None:
    catalogs = Catalogs(tmp_path / "nowhere")
    assert catalogs.locales == ("en",)
    assert catalogs.resolve(None, "ru") == "en"
    translate = catalogs.get("ru")
    assert translate("menu.prompt") == "menu.prompt"
    assert translate("menu.greeting", salon="X") == "menu.greeting"


def test_the_locales_dir_can_be_configured(
    sources_only: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shutil.rmtree(sources_only / "en")
    monkeypatch.setenv("LOCALES_DIR", str(sources_only))
    assert Catalogs().locales == ("ru",)


@pytest.mark.parametrize(
    ("chosen", "reported", "default", "expected"),
    [
        ("ru", "en-US", "en", "ru"),  # the client's choice wins
        ("en", "ru", "ru", "en"),
        (None, "ru", "en", "ru"),  # then their app's language
        (None, "ru-RU", "en", "ru"),
        (None, "RU_ru", "en", "ru"),
        (None, "en-GB", "ru", "en"),
        (None, "de", "ru", "ru"),  # then the salon's
        (None, None, "ru", "ru"),
        (None, "", "en", "en"),
        ("de", "fr", "ru", "ru"),  # an unknown choice is ignored
        ("de", "ru", "en", "ru"),
    ],
)
def test_resolve_order(
    chosen: str | None, reported: str | None, default: str, expected: str
) -> None:
    assert Catalogs(LOCALES, default_locale=default).resolve(chosen, reported) == expected


def test_an_unknown_default_falls_back_to_a_loaded_locale() -> None:
    catalogs = Catalogs(LOCALES, default_locale="de")
    assert catalogs.resolve(None, None) in catalogs.locales
    assert catalogs.get("de")("menu.prompt") in {"How can I help you?", "Чем могу помочь?"}
