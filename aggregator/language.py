"""Entry -> language, by order of evidence; the text is read when evidence is missing or wrong.

Evidence, strongest first:
  1. entry      - the entry's own xml:lang / dc:language / JSON `language`
  2. document   - the feed document's declared language
  3. config     - the feed's `language` in feeds.yaml (unless `auto`)
  4. identified - title + summary run through py3langid (see docs/language-id.md for why)
  5. none       - nothing conclusive: stored with an unknown language

A document- or config-level declaration is checked against the text: a feed that declares
`en-US` but carries French articles gets them identified as French. Entry-level declarations
are specific to the entry and trusted as written.
"""

from __future__ import annotations

import re
import threading
from array import array
from dataclasses import dataclass
from functools import lru_cache
from typing import Protocol

import langcodes
import pycld2

from .config import normalise_language_tag

# py3langid answers a language outside the site only when this sure (docs/language-id.md: at
# 0.5 it keeps 98% of foreign entries out of the site's languages and every site entry in).
OTHER_LANGUAGE_MIN = 0.5
# A declared language is overruled only when the text says otherwise this clearly and the
# declared language is this unlikely (on tests/data/language-eval.jsonl: no correct declaration
# of 1,012 overruled, 97% of wrong ones caught; 0.95/0.01 caught 94%).
CONTRADICTION_MIN = 0.8
DECLARED_MAX = 0.1
# ...and there is this much text to judge (short titles are names, slogans, English loans).
CONTRADICTION_MIN_CHARS = 60
# How much text the identifier reads: title + the start of the summary is enough, and the
# identifier's cost grows with the length.
IDENTIFY_CHARS = 300

# Scripts that identify a language family on sight; Latin is shared by too many to count.
_SCRIPT_LANGUAGES = {
    "CYRILLIC": {"ru", "uk", "bg", "sr", "mk", "be", "kk", "ky", "mn", "tg"},
    "GREEK": {"el"},
    "ARABIC": {"ar", "fa", "ur", "ps", "sd", "ug", "ckb"},
    "HEBREW": {"he", "yi"},
    "CJK": {"zh", "ja", "ko"},
    "HANGUL": {"ko"},
    "HIRAGANA": {"ja"},
    "KATAKANA": {"ja"},
    "DEVANAGARI": {"hi", "mr", "ne", "sa"},
    "THAI": {"th"},
    "GEORGIAN": {"ka"},
    "ARMENIAN": {"hy"},
}


# Character ranges of those scripts; a regex scan is far cheaper than naming every character.
_SCRIPT_PATTERNS = [
    (script, re.compile(f"[{ranges}]"))
    for script, ranges in (
        ("CYRILLIC", "\u0400-\u052f"),
        ("GREEK", "\u0370-\u03ff\u1f00-\u1fff"),
        ("ARABIC", "\u0600-\u06ff\u0750-\u077f\ufb50-\ufdff\ufe70-\ufeff"),
        ("HEBREW", "\u0590-\u05ff"),
        ("HIRAGANA", "\u3040-\u309f"),
        ("KATAKANA", "\u30a0-\u30ff"),
        ("CJK", "\u3040-\u30ff\u4e00-\u9fff\u3400-\u4dbf\uac00-\ud7af"),
        ("HANGUL", "\uac00-\ud7af\u1100-\u11ff"),
        ("DEVANAGARI", "\u0900-\u097f"),
        ("THAI", "\u0e00-\u0e7f"),
        ("GEORGIAN", "\u10a0-\u10ff"),
        ("ARMENIAN", "\u0530-\u058f"),
    )
]


@dataclass(frozen=True, slots=True)
class Resolved:
    language: str | None  # primary subtag, e.g. "en"
    tag: str | None  # full tag as declared, e.g. "en-GB"
    evidence: str  # entry | document | config | identified | none


class _Ranker(Protocol):
    def rank(self, text: str) -> list[tuple[str, float]]: ...


@lru_cache(maxsize=4096)
def normalise(tag: str | None) -> tuple[str, str] | None:
    """A declared language tag -> (primary subtag, full BCP 47 tag), e.g. 'en_us' ->
    ('en', 'en-US'); None for empty, malformed or unknown tags.

    Codes are canonicalised with langcodes (BCP 47 / IANA registry): ISO 639-2 and
    deprecated codes become their current form ('eng' -> 'en', 'iw' -> 'he', 'in' -> 'id',
    'ji' -> 'yi'); 'und' (undetermined) is no declaration."""
    if not tag or not isinstance(tag, str):
        return None
    try:
        canonical = langcodes.standardize_tag(tag.strip().replace("_", "-"))
        if canonical.split("-")[0] in ("und", "mul", "zxx"):
            return None
        full = normalise_language_tag(canonical)
    except (ValueError, LookupError):
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
    declared = normalise(entry_language)
    if declared:
        return Resolved(declared[0], declared[1], "entry")
    for value, evidence in (
        (document_language, "document"),
        (None if configured == "auto" else configured, "config"),
    ):
        found = normalise(value)
        if found:
            other = contradiction(found[0], text, candidates)
            if other:
                return Resolved(other, other, "identified")
            return Resolved(found[0], found[1], evidence)
    guess = identify(text, candidates)
    if guess:
        return Resolved(guess, guess, "identified")
    return Resolved(None, None, "none")


def identify(text: str, candidates: tuple[str, ...]) -> str | None:
    """The language of `text`: the likeliest of `candidates` (the site's languages), unless
    the text is clearly in another language, which is then returned instead."""
    text = text.strip()[:IDENTIFY_CHARS]
    if len(text) < 3 or not any(c.isalpha() for c in text):
        return None
    ranking = _model().rank(text)
    top, probability = ranking[0]
    if top not in candidates and probability >= OTHER_LANGUAGE_MIN:
        return top
    return next((lang for lang, _ in ranking if lang in candidates), None)


def contradiction(declared: str, text: str, candidates: tuple[str, ...]) -> str | None:
    """The language the text is really in, when it clearly is not `declared`; else None.

    Two stages: CLD2 (compiled, ~15 us) confirms most declarations outright; only when it
    disagrees does py3langid (~100 us) decide, with the strict thresholds above. Stage one can
    only confirm, never overrule, so it cannot cause a wrong answer, only a missed one.
    """
    text = text.strip()[:IDENTIFY_CHARS]
    if _cld2_confirms(declared, text):
        return None
    script = dominant_script(text)
    if script and declared not in _SCRIPT_LANGUAGES.get(script, set()):
        # Cyrillic text declared as English, say: no statistics needed to see it is wrong.
        return identify(text, candidates)
    if script is None and _is_script_language(declared) and _letters(text) >= 20:
        return identify(text, candidates)  # Latin text declared as Russian, Greek, ...
    if len(text) < CONTRADICTION_MIN_CHARS:
        return None
    ranking = dict(_model().rank(text))
    best = max(ranking, key=ranking.__getitem__)
    if best != declared and ranking[best] >= CONTRADICTION_MIN and ranking.get(declared, 0.0) <= DECLARED_MAX:
        return best
    return None


_CLD2_OLD_CODES = {"iw": "he", "in": "id", "jw": "jv", "tl": "fil"}


def _cld2_confirms(declared: str, text: str) -> bool:
    try:
        _, _, details = pycld2.detect(text, bestEffort=True)
    except (pycld2.error, UnicodeError, ValueError):  # CLD2 rejects some text; py3langid judges
        return False
    code = str(details[0][1]).split("-")[0].lower()
    return _CLD2_OLD_CODES.get(code, code) == declared


def dominant_script(text: str) -> str | None:
    """The non-Latin script most letters of `text` are in, or None for Latin or mixed text."""
    if text.isascii():
        return None
    letters = _letters(text) or 1
    for script, pattern in _SCRIPT_PATTERNS:
        if len(pattern.findall(text)) * 2 > letters:
            return script
    return None


def _is_script_language(code: str) -> bool:
    return any(code in langs for langs in _SCRIPT_LANGUAGES.values())


_LETTER = re.compile(r"[^\W\d_]")


def _letters(text: str) -> int:
    return len(_LETTER.findall(text))


_MODEL: _Ranker | None = None
_MODEL_LOCK = threading.Lock()


def _model() -> _Ranker:
    """The py3langid model, loaded once per process. Loading takes about a second, so it is
    lazy; the lock makes worker threads that arrive together wait for one load instead of each
    loading a copy (lru_cache does not: 5-6 copies, 541 MB instead of 187 MB, issue 11)."""
    global _MODEL
    model = _MODEL
    if model is None:
        with _MODEL_LOCK:
            if _MODEL is None:
                from py3langid.langid import MODEL_FILE, LanguageIdentifier

                loaded = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
                _compact(loaded)
                _MODEL = loaded
            model = _MODEL
    return model


def _compact(model: object) -> None:
    """Hold the tokeniser's two per-state tables (104,583 states each) as machine-integer
    arrays instead of lists of Python ints. Same values, same lookups (measured: the same
    rankings on the 72 real feeds, no slower), but reading them writes nothing: reading a list
    element updates its int's reference count, which made every parse worker copy the
    forkserver's pages of those tables (about 8 MB each, docs/benchmarks.md). The attributes are
    py3langid 0.4's (`visit_counts` indexes them); any other shape is left as it is."""
    for name, typecode in (("tk_output", "i"), ("_rowbase", "q")):
        table = getattr(model, name, None)
        if isinstance(table, list):
            setattr(model, name, array(typecode, table))


def warm() -> None:
    """Load the identifier's model now (about a second) rather than at the first entry that
    needs it: parse workers call this as they start, while the first downloads are running."""
    _model()
