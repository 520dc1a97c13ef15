#!/usr/bin/env python3
"""Compare language identifiers on tests/data/language-eval.jsonl.

For every identifier: accuracy over the site's five languages (titles alone and
title + summary), throughput and resident memory, plus what it answers for entries in
other languages. Each identifier runs in its own child process, so its memory is
measured alone; one command runs them all:

    python bench/language_id_compare.py [--data FILE] [--json OUT] [--errors NAME]

Needs: lingua-language-detector, py3langid, langdetect (none downloads anything at run time).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

SITE = ("en", "es", "it", "fr", "ru")
DEFAULT_DATA = Path(__file__).resolve().parents[1] / "tests" / "data" / "language-eval.jsonl"
OWN_THRESHOLDS = (0.5, 0.9)  # 0.5 is aggregator.language.MIN_CONFIDENCE today
GATE_THRESHOLDS = (0.0, 0.5)
REPEATS = 3

# (language code or None, confidence in [0, 1])
Answer = tuple[str | None, float]
Identify = Callable[[str], Answer]


def lingua(site_only: bool, low_accuracy: bool) -> Identify:
    from lingua import IsoCode639_1, Language, LanguageDetectorBuilder

    if site_only:
        langs = [Language.from_iso_code_639_1(getattr(IsoCode639_1, c.upper())) for c in SITE]
        builder = LanguageDetectorBuilder.from_languages(*langs)
    else:
        builder = LanguageDetectorBuilder.from_all_languages()
    if low_accuracy:
        builder = builder.with_low_accuracy_mode()
    detector = builder.build()

    def identify(text: str) -> Answer:
        values = detector.compute_language_confidence_values(text)
        if not values:
            return None, 0.0
        return values[0].language.iso_code_639_1.name.lower(), values[0].value

    return identify


def py3langid(site_only: bool) -> Identify:
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    identifier = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
    if site_only:
        identifier.set_languages(list(SITE))

    def identify(text: str) -> Answer:
        lang, confidence = identifier.classify(text)
        return lang, float(confidence)

    return identify


def py3langid_checked(least: float) -> Identify:
    """One unrestricted model: the best of the five, or None when the overall best is
    another language with probability >= `least` (the out-of-site rule in one pass)."""
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    identifier = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)

    def identify(text: str) -> Answer:
        ranking = identifier.rank(text)
        top, probability = ranking[0]
        if top not in SITE and probability >= least:
            return None, float(probability)
        lang, probability = next((lang, p) for lang, p in ranking if lang in SITE)
        return lang, float(probability)

    return identify


def langdetect() -> Identify:
    from langdetect import DetectorFactory, LangDetectException, detect_langs

    DetectorFactory.seed = 0  # langdetect is random otherwise

    def identify(text: str) -> Answer:
        try:
            best = detect_langs(text)[0]
        except LangDetectException:
            return None, 0.0
        return best.lang.split("-")[0], float(best.prob)

    return identify


IDENTIFIERS: dict[str, Callable[[], Identify]] = {
    "lingua-5": lambda: lingua(site_only=True, low_accuracy=False),
    "lingua-5-low": lambda: lingua(site_only=True, low_accuracy=True),
    "lingua-all": lambda: lingua(site_only=False, low_accuracy=False),
    "lingua-all-low": lambda: lingua(site_only=False, low_accuracy=True),
    "py3langid": lambda: py3langid(site_only=False),
    "py3langid-5": lambda: py3langid(site_only=True),
    "py3langid-5+check": lambda: py3langid_checked(least=0.5),
    "langdetect": langdetect,
}
RULE_BASES = ("lingua-5", "py3langid-5")
GATES = ("lingua-all", "lingua-all-low", "py3langid")


def rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS in /proc/self/status")


def load(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as lines:
        return [json.loads(line) for line in lines]


def texts(rows: list[dict[str, Any]]) -> dict[str, list[str]]:
    return {
        "title+summary": [f"{r['title']}\n{r['summary']}".strip() for r in rows],
        "title": [r["title"] for r in rows],
    }


def run_one(name: str, data: Path) -> dict[str, Any]:
    """Child process: build one identifier, time it, report answers and memory."""
    inputs = texts(load(data))
    before = rss_kib()
    started = time.perf_counter()
    identify = IDENTIFIERS[name]()
    build_s = time.perf_counter() - started
    built = rss_kib()
    for text in inputs["title"]:  # warm-up: lets lazy loaders load their models
        identify(text)
    result: dict[str, Any] = {"name": name, "build_s": build_s, "answers": {}, "per_s": {}}
    for kind, items in inputs.items():
        best = float("inf")
        for _ in range(REPEATS):  # best of a few passes: the machine is shared
            started = time.perf_counter()
            result["answers"][kind] = [identify(text) for text in items]
            best = min(best, time.perf_counter() - started)
        result["per_s"][kind] = len(items) / best
    result["rss_built_mib"] = (built - before) / 1024
    result["rss_run_mib"] = (rss_kib() - before) / 1024
    return result


def run_all(data: Path) -> dict[str, dict[str, Any]]:
    results = {}
    for name in IDENTIFIERS:
        print(f"running {name} ...", file=sys.stderr)
        child = subprocess.run(
            [sys.executable, __file__, "--data", str(data), "--child", name],
            check=True,
            capture_output=True,
            text=True,
        )
        results[name] = json.loads(child.stdout)
    return results


def pct(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f}" if whole else "-"


def accuracy_table(rows: list[dict[str, Any]], results: dict[str, dict[str, Any]]) -> str:
    site = [i for i, r in enumerate(rows) if r["lang"] in SITE]
    per_lang = Counter(rows[i]["lang"] for i in site)
    head = " | ".join(f"{lang} (n={per_lang[lang]})" for lang in SITE)
    out = [
        f"| identifier | text | {head} | all five (n={len(site)}) | entries/s "
        "| RSS Δ built MiB | RSS Δ after run MiB |",
        "|---" * (len(SITE) + 6) + "|",
    ]
    for name, result in results.items():
        for kind, answers in result["answers"].items():
            right: Counter[str] = Counter()
            for i in site:
                if answers[i][0] == rows[i]["lang"]:
                    right[rows[i]["lang"]] += 1
            cells = " | ".join(pct(right[lang], per_lang[lang]) for lang in SITE)
            total = pct(sum(right.values()), len(site))
            out.append(
                f"| {name} | {kind} | {cells} | **{total}** | {result['per_s'][kind]:,.0f} "
                f"| {result['rss_built_mib']:.0f} | {result['rss_run_mib']:.0f} |"
            )
    return "\n".join(out)


def outside_table(rows: list[dict[str, Any]], results: dict[str, dict[str, Any]]) -> str:
    """What identifiers answer for entries whose language is not one of the five."""
    other = [i for i, r in enumerate(rows) if r["lang"] not in SITE]
    out = [
        f"| identifier | text | answered a site language (of {len(other)}) | answers |",
        "|---|---|---|---|",
    ]
    for name, result in results.items():
        for kind, answers in result["answers"].items():
            got = Counter(answers[i][0] or "unknown" for i in other)
            into_site = sum(n for lang, n in got.items() if lang in SITE)
            top = ", ".join(f"{lang} {n}" for lang, n in got.most_common(6))
            out.append(f"| {name} | {kind} | {pct(into_site, len(other))} % | {top} |")
    return "\n".join(out)


def mapping_table(rows: list[dict[str, Any]], results: dict[str, dict[str, Any]]) -> str:
    """Per other language: what each restricted identifier answers (title + summary)."""
    langs = Counter(r["lang"] for r in rows if r["lang"] not in SITE)
    out = [
        "| language (n) | " + " | ".join(RULE_BASES) + " |",
        "|---" * (len(RULE_BASES) + 1) + "|",
    ]
    for lang, n in langs.most_common():
        cells = []
        for name in RULE_BASES:
            answers = results[name]["answers"]["title+summary"]
            got = Counter(answers[i][0] or "unknown" for i, r in enumerate(rows) if r["lang"] == lang)
            cells.append(", ".join(f"{answer} {count}" for answer, count in got.most_common(3)))
        out.append(f"| {lang} ({n}) | " + " | ".join(cells) + " |")
    return "\n".join(out)


Decide = Callable[[str, int], str | None]


def confident(answers: dict[str, list[Answer]], least: float) -> Decide:
    """The restricted answer, or unknown when its own confidence is below `least`."""

    def decide(kind: str, i: int) -> str | None:
        lang, confidence = answers[kind][i]
        return lang if confidence >= least else None

    return decide


def gated(answers: dict[str, list[Answer]], gate: dict[str, list[Answer]], least: float) -> Decide:
    """The restricted answer, or unknown when the unrestricted `gate` names another language
    with confidence >= `least`."""

    def decide(kind: str, i: int) -> str | None:
        other, confidence = gate[kind][i]
        outside = other not in SITE and confidence >= least
        return None if outside else answers[kind][i][0]

    return decide


def rules(results: dict[str, dict[str, Any]]) -> dict[str, Decide]:
    """Ways to turn a restricted identifier's answer into 'site language or unknown'."""
    made: dict[str, Decide] = {}
    for base in RULE_BASES:
        answers = results[base]["answers"]
        made[f"{base}, no rule"] = confident(answers, 0.0)
        for least in OWN_THRESHOLDS:
            made[f"{base}, own confidence >= {least}"] = confident(answers, least)
        for gate in GATES:
            for least in GATE_THRESHOLDS:
                when = f" (confidence >= {least})" if least else ""
                label = f"{base}, unknown if {gate} says another language{when}"
                made[label] = gated(answers, results[gate]["answers"], least)
    return made


def rules_table(rows: list[dict[str, Any]], results: dict[str, dict[str, Any]]) -> str:
    site = [i for i, r in enumerate(rows) if r["lang"] in SITE]
    other = [i for i, r in enumerate(rows) if r["lang"] not in SITE]
    out = [
        "| rule | text | site: right % | site: unknown % | other: unknown % "
        "| other: given a site language % |",
        "|---|---|---|---|---|---|",
    ]
    for label, decide in rules(results).items():
        for kind in ("title+summary", "title"):
            right = sum(decide(kind, i) == rows[i]["lang"] for i in site)
            site_unknown = sum(decide(kind, i) is None for i in site)
            other_unknown = sum(decide(kind, i) is None for i in other)
            out.append(
                f"| {label} | {kind} | {pct(right, len(site))} | {pct(site_unknown, len(site))} "
                f"| {pct(other_unknown, len(other))} "
                f"| {pct(len(other) - other_unknown, len(other))} |"
            )
    return "\n".join(out)


def errors(rows: list[dict[str, Any]], result: dict[str, Any]) -> str:
    out = []
    for kind, answers in result["answers"].items():
        wrong: defaultdict[str, list[str]] = defaultdict(list)
        for i, row in enumerate(rows):
            if row["lang"] in SITE and answers[i][0] != row["lang"]:
                lang, confidence = answers[i]
                wrong[row["lang"]].append(f"  {row['id']}: {lang} {confidence:.2f} | {row['title'][:80]}")
        out.append(f"{result['name']} wrong on {kind}:")
        for lang in SITE:
            out.extend(wrong[lang])
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--json", type=Path, help="also write raw results here")
    parser.add_argument("--errors", action="append", default=[], help="list errors of NAME")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        json.dump(run_one(args.child, args.data), sys.stdout)
        return
    rows = load(args.data)
    results = run_all(args.data)
    if args.json:
        args.json.write_text(json.dumps(results))
    print(f"## Accuracy on the five site languages, % ({args.data.name}, {len(rows)} entries)\n")
    print(accuracy_table(rows, results))
    print("\n## Entries in other languages\n")
    print(outside_table(rows, results))
    print("\nWhat the restricted identifiers answer, per language (title + summary):\n")
    print(mapping_table(rows, results))
    print("\n## Keeping other languages out\n")
    print(rules_table(rows, results))
    for name in args.errors:
        print("\n```\n" + errors(rows, results[name]) + "\n```")


if __name__ == "__main__":
    main()
