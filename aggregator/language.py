"""Entry -> language, by order of evidence; text identification only where evidence is missing.

Evidence, strongest first:
  1. entry   - the entry's own xml:lang / dc:language / JSON `language`
  2. document - the feed document's declared language
  3. config   - the feed's `language` in feeds.yaml (unless `auto`)
  4. identified - title + summary run through lingua, restricted to the site's languages
  5. none     - nothing conclusive: stored with an unknown language
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from lingua import IsoCode639_1, Language, LanguageDetector, LanguageDetectorBuilder

from .config import normalise_language_tag

# Below this confidence the identifier's answer is not trusted (short or mixed text).
MIN_CONFIDENCE = 0.5


@dataclass(frozen=True, slots=True)
class Resolved:
    language: str | None  # primary subtag, e.g. "en"
    tag: str | None  # full tag as declared, e.g. "en-GB"
    evidence: str  # entry | document | config | identified | none


def normalise(tag: str | None) -> tuple[str, str] | None:
    """'en_us' -> ('en', 'en-US'); None for empty or malformed tags."""
    if not tag:
        return None
    try:
        full = normalise_language_tag(tag)
    except ValueError:
        return None
    return full.split("-")[0], full


def resolve(
    entry_language: str | None,
    document_language: str | None,
    configured: str,
    text: str,
    candidates: tuple[str, ...],
) -> Resolved:
    """Pick an entry's language. `configured` is the feeds.yaml value ('auto' or a tag)."""
    for value, evidence in (
        (entry_language, "entry"),
        (document_language, "document"),
        (None if configured == "auto" else configured, "config"),
    ):
        found = normalise(value)
        if found:
            return Resolved(found[0], found[1], evidence)
    guess = identify(text, candidates)
    if guess:
        return Resolved(guess, guess, "identified")
    return Resolved(None, None, "none")


def identify(text: str, candidates: tuple[str, ...]) -> str | None:
    """The most likely of `candidates` for `text`, or None when not confident."""
    text = text.strip()
    if len(text) < 3:
        return None
    detector = _detector(tuple(sorted(set(candidates))))
    if detector is None:
        return None
    values = detector.compute_language_confidence_values(text)
    if not values:
        return None
    best = values[0]
    if best.value < MIN_CONFIDENCE:
        return None
    return str(best.language.iso_code_639_1.name.lower())


@lru_cache(maxsize=8)
def _detector(codes: tuple[str, ...]) -> LanguageDetector | None:
    languages = []
    for code in codes:
        try:
            languages.append(Language.from_iso_code_639_1(getattr(IsoCode639_1, code.upper())))
        except (AttributeError, ValueError):
            continue  # a language lingua does not know cannot be identified, only declared
    if len(languages) < 2:
        return None
    return LanguageDetectorBuilder.from_languages(*languages).with_preloaded_language_models().build()
