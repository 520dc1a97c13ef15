"""The words the front pages say themselves, in the page's language.

Dates, times, month and language names come from CLDR through babel; the few phrases of our
own ("via", "Previous day", "Archive", ...) come from the catalogue below. A language or phrase
missing from the catalogue falls back to English, and `say` reports which language it used so a
page can mark an English phrase inside, say, an Urdu page with its own `lang` and direction.
Pure: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time
from functools import lru_cache
from zoneinfo import ZoneInfo

from babel import Locale, UnknownLocaleError
from babel.dates import format_skeleton, format_time

FALLBACK = "en"

# key -> phrase. `{count}` and `{language}` are filled in by `say`. Phrases avoid plural nouns
# ("12 more in English", not "12 more entries") so one form serves every count.
MESSAGES: dict[str, dict[str, str]] = {
    "en": {
        "all_languages": "All languages",
        "also_in": "also in",
        "archive": "Archive",
        "day_feed": "This day",
        "daily_feed": "Daily digest",
        "days": "Days",
        "entries_feed": "Entries",
        "failing": "Feeds that are failing",
        "feeds": "Feeds",
        "languages": "Languages",
        "more": "{count} more in {language}",
        "next_day": "Next day",
        "newer": "Newer entries",
        "no_entries": "No entries yet",
        "no_entries_long": "No entries yet: the feeds have not delivered anything so far.",
        "older": "Older entries",
        "other": "Other",
        "page_of": "Page {number} of {count}",
        "pages": "Pages",
        "previous_day": "Previous day",
        "untitled": "(untitled)",
        "via": "via",
    },
    "es": {
        "all_languages": "Todos los idiomas",
        "also_in": "también en",
        "archive": "Archivo",
        "day_feed": "Este día",
        "daily_feed": "Resumen diario",
        "days": "Días",
        "entries_feed": "Artículos",
        "failing": "Fuentes con errores",
        "feeds": "Canales",
        "languages": "Idiomas",
        "more": "{count} más en {language}",
        "next_day": "Día siguiente",
        "newer": "Más recientes",
        "no_entries": "Aún no hay artículos",
        "no_entries_long": "Aún no hay artículos: las fuentes no han entregado nada todavía.",
        "older": "Más antiguos",
        "other": "Otros",
        "page_of": "Página {number} de {count}",
        "pages": "Páginas",
        "previous_day": "Día anterior",
        "untitled": "(sin título)",
        "via": "vía",
    },
    "it": {
        "all_languages": "Tutte le lingue",
        "also_in": "anche in",
        "archive": "Archivio",
        "day_feed": "Questo giorno",
        "daily_feed": "Riepilogo giornaliero",
        "days": "Giorni",
        "entries_feed": "Articoli",
        "failing": "Fonti in errore",
        "feeds": "Feed",
        "languages": "Lingue",
        "more": "Altri {count} in {language}",
        "next_day": "Giorno successivo",
        "newer": "Più recenti",
        "no_entries": "Ancora nessun articolo",
        "no_entries_long": "Ancora nessun articolo: le fonti non hanno ancora consegnato nulla.",
        "older": "Meno recenti",
        "other": "Altro",
        "page_of": "Pagina {number} di {count}",
        "pages": "Pagine",
        "previous_day": "Giorno precedente",
        "untitled": "(senza titolo)",
        "via": "da",
    },
    "fr": {
        "all_languages": "Toutes les langues",
        "also_in": "aussi en",
        "archive": "Archives",
        "day_feed": "Ce jour",
        "daily_feed": "Résumé quotidien",
        "days": "Jours",
        "entries_feed": "Articles",
        "failing": "Flux en erreur",
        "feeds": "Flux",
        "languages": "Langues",
        "more": "{count} de plus en {language}",
        "next_day": "Jour suivant",
        "newer": "Plus récents",
        "no_entries": "Aucun article pour l’instant",
        "no_entries_long": "Aucun article pour l’instant : les flux n’ont encore rien livré.",
        "older": "Plus anciens",
        "other": "Autres",
        "page_of": "Page {number} sur {count}",
        "pages": "Pages",
        "previous_day": "Jour précédent",
        "untitled": "(sans titre)",
        "via": "via",
    },
    "ru": {
        "all_languages": "Все языки",
        "also_in": "также на",
        "archive": "Архив",
        "day_feed": "Этот день",
        "daily_feed": "Ежедневный дайджест",
        "days": "Дни",
        "entries_feed": "Статьи",
        "failing": "Ленты с ошибками",
        "feeds": "Ленты",
        "languages": "Языки",
        "more": "{language}: ещё {count}",
        "next_day": "Следующий день",
        "newer": "Более новые",
        "no_entries": "Пока нет статей",
        "no_entries_long": "Пока нет статей: ленты ещё ничего не прислали.",
        "older": "Более старые",
        "other": "Другие",
        "page_of": "Страница {number} из {count}",
        "pages": "Страницы",
        "previous_day": "Предыдущий день",
        "untitled": "(без названия)",
        "via": "источник:",
    },
    "de": {
        "all_languages": "Alle Sprachen",
        "also_in": "auch auf",
        "archive": "Archiv",
        "day_feed": "Dieser Tag",
        "daily_feed": "Tägliche Zusammenfassung",
        "days": "Tage",
        "entries_feed": "Artikel",
        "failing": "Feeds mit Fehlern",
        "feeds": "Feeds",
        "languages": "Sprachen",
        "more": "{count} weitere auf {language}",
        "next_day": "Nächster Tag",
        "newer": "Neuere Artikel",
        "no_entries": "Noch keine Artikel",
        "no_entries_long": "Noch keine Artikel: die Feeds haben bisher nichts geliefert.",
        "older": "Ältere Artikel",
        "other": "Andere",
        "page_of": "Seite {number} von {count}",
        "pages": "Seiten",
        "previous_day": "Vorheriger Tag",
        "untitled": "(ohne Titel)",
        "via": "über",
    },
    "pt": {
        "all_languages": "Todos os idiomas",
        "also_in": "também em",
        "archive": "Arquivo",
        "day_feed": "Este dia",
        "daily_feed": "Resumo diário",
        "days": "Dias",
        "entries_feed": "Artigos",
        "failing": "Fontes com erros",
        "feeds": "Feeds",
        "languages": "Idiomas",
        "more": "Mais {count} em {language}",
        "next_day": "Dia seguinte",
        "newer": "Mais recentes",
        "no_entries": "Ainda não há artigos",
        "no_entries_long": "Ainda não há artigos: as fontes ainda não entregaram nada.",
        "older": "Mais antigos",
        "other": "Outros",
        "page_of": "Página {number} de {count}",
        "pages": "Páginas",
        "previous_day": "Dia anterior",
        "untitled": "(sem título)",
        "via": "via",
    },
}


@dataclass(frozen=True, slots=True)
class Phrase:
    """A phrase and the language it is actually in (the page's, or the English fallback)."""

    text: str
    language: str


def say(key: str, language: str, /, **values: object) -> Phrase:
    """The catalogue's phrase `key` in `language` (a primary subtag), English when the catalogue
    lacks that language or that phrase. Raises KeyError for a key no language has."""
    table = MESSAGES.get(language, {})
    lang = language if key in table else FALLBACK
    template = MESSAGES[lang][key]
    return Phrase(template.format(**values) if values else template, lang)


def month_name(year: int, month: int, locale: str) -> str:
    """'January 2023', 'enero de 2023', 'январь 2023 г.': CLDR's stand-alone year-month."""
    try:
        return str(format_skeleton("yMMMM", date(year, month, 1), locale=locale))
    except (UnknownLocaleError, ValueError):
        return f"{year:04d}-{month:02d}"


def day_label(day: date, locale: str) -> str:
    """'Tue 17 January', 'mar, 17 de enero': a day within a month's list in the archive."""
    try:
        return str(format_skeleton("MMMMEd", day, locale=locale))
    except (UnknownLocaleError, ValueError):
        return day.isoformat()


@lru_cache(maxsize=256)
def _locale(name: str) -> Locale:
    return Locale.parse(name)


def clock(moment: datetime, zone: ZoneInfo, locale: str) -> str:
    """'16:51 GMT' (en_GB), '4:51 PM EST' (en_US): CLDR's short time in `zone`, then the zone's
    abbreviation so a reader abroad knows which clock is meant."""
    local = moment.astimezone(zone)
    return _clock(local.hour, local.minute, local.tzname() or "", locale)


@lru_cache(maxsize=16384)
def _clock(hour: int, minute: int, abbreviation: str, locale: str) -> str:
    # A page shows thousands of times but a day has only 1,440 minutes: format each once.
    moment = time(hour, minute)
    try:
        text = str(format_time(moment, "short", locale=_locale(locale)))
    except (UnknownLocaleError, ValueError):
        text = f"{moment:%H:%M}"
    return f"{text} {abbreviation}".strip()
