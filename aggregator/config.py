"""feeds.yaml -> a typed, validated Config; every error names the file, line and field."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from babel import Locale, UnknownLocaleError
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    GetCoreSchemaHandler,
    HttpUrl,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import CoreSchema, core_schema

from .settings import Site
from .urls import strip_secrets

DEFAULT_USER_AGENT = (
    "aggregator/0.1 (+https://github.com/; multilingual feed republisher; polite: conditional GET)"
)

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d)?\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, None: 1}


class ConfigError(Exception):
    """An invalid feeds.yaml; str() is one line per problem, each naming file:line and field."""

    def __init__(self, path: Path, problems: Sequence[tuple[int | None, str, str]]) -> None:
        self.path = path
        self.problems = list(problems)
        lines = []
        for line, fld, msg in self.problems:
            where = f"{path}:{line}" if line else str(path)
            lines.append(f"{where}: {fld}: {msg}" if fld else f"{where}: {msg}")
        super().__init__("\n".join(lines))


def parse_duration(value: object) -> timedelta:
    """'15m', '1h', '90s', '2d' or a number of seconds."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, bool):
        raise ValueError("expected a duration like 15m, 1h or 90s")
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        m = _DURATION.match(str(value))
        if not m:
            raise ValueError(f"{value!r} is not a duration; write it like 30s, 15m, 1h or 1d")
        seconds = float(m.group(1)) * _UNITS[m.group(2)]
    if seconds <= 0:
        raise ValueError("must be longer than zero")
    return timedelta(seconds=seconds)


def normalise_language_tag(value: str) -> str:
    """'en_us' -> 'en-US'; raises ValueError for codes no locale database knows."""
    tag = value.strip().replace("_", "-")
    parts = tag.split("-")
    if not parts[0].isalpha() or not 2 <= len(parts[0]) <= 3:
        raise ValueError(f"{value!r} is not a BCP 47 language tag (e.g. en, es, pt-BR)")
    parts[0] = parts[0].lower()
    for i, p in enumerate(parts[1:], 1):
        if len(p) == 2 and p.isalpha():
            parts[i] = p.upper()
        elif len(p) == 4 and p.isalpha():
            parts[i] = p.title()
    try:
        Locale.parse(parts[0])
    except (UnknownLocaleError, ValueError):
        raise ValueError(f"unknown language code {parts[0]!r}") from None
    return "-".join(parts)


def _language(value: object) -> str:
    if not isinstance(value, str):
        raise ValueError("expected a language code such as en or es")
    return normalise_language_tag(value)


def _feed_language(value: object) -> str:
    if isinstance(value, str) and value.strip().lower() == "auto":
        return "auto"
    return _language(value)


def _interval(value: object) -> object:
    if isinstance(value, str) and value.strip().lower() == "auto":
        return "auto"
    try:
        return parse_duration(value)
    except ValueError as e:
        raise ValueError(f"{e} (or auto, to follow how often the feed publishes)") from None


Duration = Annotated[timedelta, BeforeValidator(parse_duration)]
# A fixed duration, or "auto": adapt to how often the feed publishes (see policy.auto_interval).
Interval = Annotated[timedelta | Literal["auto"], BeforeValidator(_interval)]
LanguageTag = Annotated[str, BeforeValidator(_language)]
FeedLanguage = Annotated[str, BeforeValidator(_feed_language)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SiteModel(_Model):
    """feeds.yaml's `site:`: its fields, defaults and rules. Validating makes a plain
    `settings.Site` (`settings()`), which is what `Config.site` holds and pages are made from."""

    title: str = "Aggregated news"
    link: HttpUrl = HttpUrl("http://127.0.0.1:8080/")
    base_url: HttpUrl = HttpUrl("http://127.0.0.1:8080/")
    timezone: str = "UTC"
    languages: list[LanguageTag] = Field(default_factory=lambda: ["en"], min_length=1)
    entries_per_feed: int = Field(50, ge=1, le=1000)
    # Longest lede, in characters, on front pages and in feeds' summaries (cut at a sentence,
    # else a word boundary). The default keeps the seed front page's ledes whole (the longest,
    # Italian, is 662 characters) and cuts whole articles carried as descriptions.
    lede_length: int = Field(700, ge=40, le=10000)
    # Entries per language on the combined front page; the rest are one "more" link away on
    # that language's page of the day. Bounds the combined page (4.35 MB of HTML at 300 feeds
    # uncapped); 25 keeps every entry of the seed day.
    frontpage_per_language: int = Field(25, ge=1, le=1000)
    # Entries on each page of a day: a language's page of the day (and its front page) and each
    # day archive document. A day with more goes on over further pages (`en.2.html`, RFC 5005
    # archives `en.2.atom`), so a publish holds two pages, not a day: a day of 40,000 entries
    # made 100 MB documents and a publish of 3 GB (issue 15). A publish of a 21,750-entry day
    # peaked 138 MB over its start at 1000, 104 MB at 500, 90 MB at 250 (docs/benchmarks.md).
    entries_per_page: int = Field(500, ge=1, le=10000)
    locales: dict[str, str] = Field(default_factory=dict)  # language -> babel locale override
    # Regexes over entry links with a named group `key`: links with the same key in different
    # languages are translations of one article ("also in: ES · IT").
    translation_patterns: list[str] = Field(default_factory=list)
    # A WebSub hub (W3C WebSub §4, §7): when set, output feeds advertise it (rel="hub") and it
    # is told (hub.mode=publish) about every feed that changed after a publish.
    websub_hub: HttpUrl | None = None
    # Images for the output feeds (RFC 4287 section 4.2.5 and 4.2.8): a small square icon and a
    # wider logo (2:1); JSON Feed gets them as `favicon` and `icon`, RSS the logo as `<image>`.
    icon: HttpUrl | None = None
    logo: HttpUrl | None = None

    @field_validator("translation_patterns")
    @classmethod
    def _patterns(cls, v: list[str]) -> list[str]:
        for pattern in v:
            try:
                compiled = re.compile(pattern)
            except re.error as e:
                raise ValueError(f"{pattern!r} is not a valid regular expression: {e}") from None
            if "key" not in compiled.groupindex:
                raise ValueError(f"{pattern!r} needs a named group (?P<key>...) for the shared part")
        return v

    @field_validator("timezone")
    @classmethod
    def _tz(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {v!r} (use an IANA name like Europe/London)") from None
        return v

    @field_validator("languages")
    @classmethod
    def _unique(cls, v: list[str]) -> list[str]:
        primaries = [t.split("-")[0] for t in v]
        if len(set(primaries)) != len(primaries):
            raise ValueError("each language may be listed only once")
        return primaries

    def settings(self) -> Site:
        """The validated values as plain data (URLs as text)."""
        return Site(**self.model_dump(mode="json"))


def make_site(**fields: Any) -> Site:
    """A `Site` from `site:` fields as feeds.yaml would give them, validated, defaults for
    the rest (`make_site(languages=["en", "es"])`). Raises pydantic.ValidationError."""
    return SiteModel.model_validate(fields).settings()


class _ValidatedAsSiteModel:
    """`Config.site`'s schema (pydantic's `__get_pydantic_core_schema__` hook on Annotated
    metadata): the value is validated as SiteModel, so each error keeps its path
    (`site.languages`) for FILE:LINE: FIELD messages, and then kept as a plain Site. A Site
    given in Python (tests, benchmarks) is validated again like any mapping."""

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
        return core_schema.no_info_before_validator_function(
            lambda v: dataclasses.asdict(v) if isinstance(v, Site) else v,
            core_schema.no_info_after_validator_function(
                SiteModel.settings, handler.generate_schema(SiteModel)
            ),
            serialization=core_schema.plain_serializer_function_ser_schema(dataclasses.asdict),
        )


class FetchSettings(_Model):
    concurrency: int = Field(32, ge=1, le=1000)
    per_host: int = Field(2, ge=1, le=100)
    timeout: Duration = timedelta(seconds=30)
    max_bytes: int = Field(10 * 1024 * 1024, ge=1024)
    user_agent: str = DEFAULT_USER_AGENT
    log_retention: Duration = timedelta(days=30)  # fetch_log rows older than this are pruned


def _check_bounds(lo: timedelta | None, hi: timedelta | None) -> None:
    if lo is not None and hi is not None and lo > hi:
        raise ValueError("min_interval must not be longer than max_interval")


class Defaults(_Model):
    interval: Interval = timedelta(minutes=15)
    # Bounds of `interval: auto`; a feed may override them.
    min_interval: Duration = timedelta(minutes=15)
    max_interval: Duration = timedelta(hours=24)

    @model_validator(mode="after")
    def _bounds(self) -> Defaults:
        _check_bounds(self.min_interval, self.max_interval)
        return self


class FeedConfig(_Model):
    url: HttpUrl
    name: str | None = None
    language: FeedLanguage = "auto"
    interval: Interval | None = None
    min_interval: Duration | None = None
    max_interval: Duration | None = None
    timeout: Duration | None = None
    max_bytes: int | None = Field(None, ge=1024)
    allow_private: bool = False  # let redirects lead to private/loopback/link-local addresses
    enabled: bool = True

    @model_validator(mode="after")
    def _bounds(self) -> FeedConfig:
        _check_bounds(self.min_interval, self.max_interval)
        return self

    @property
    def key(self) -> str:
        return str(self.url)

    @property
    def title(self) -> str:
        """The feed's name, else its URL without credentials or tokens (names are shown on
        pages and in logs; a private feed address must not be)."""
        return self.name or strip_secrets(self.key)


class Config(_Model):
    site: Annotated[Site, _ValidatedAsSiteModel()] = Field(default_factory=lambda: SiteModel().settings())
    defaults: Defaults = Field(default_factory=lambda: Defaults())
    fetch: FetchSettings = Field(default_factory=lambda: FetchSettings())
    feeds: list[FeedConfig] = Field(default_factory=list)
    path: Path | None = Field(None, exclude=True)

    @field_validator("feeds", mode="before")
    @classmethod
    def _no_feeds_yet(cls, v: object) -> object:
        return [] if v is None else v  # `feeds:` with nothing under it: a new file

    def interval_for(self, feed: FeedConfig) -> timedelta | Literal["auto"]:
        return feed.interval or self.defaults.interval

    def feed(self, name_or_url: str) -> FeedConfig | None:
        for f in self.feeds:
            if name_or_url in (f.name, f.key, str(f.url).rstrip("/")):
                return f
        return None


def _line_of(node: Any, loc: Sequence[str | int]) -> int | None:
    """Walk ruamel's node tree along a pydantic error location; 1-based line of the deepest hit."""
    from ruamel.yaml.comments import CommentedMap, CommentedSeq

    line: int | None = None
    for part in loc:
        if isinstance(node, CommentedMap) and part in node:
            line = node.lc.key(part)[0] + 1
            node = node[part]
        elif isinstance(node, CommentedSeq) and isinstance(part, int) and part < len(node):
            line = node.lc.item(part)[0] + 1
            node = node[part]
        else:
            break
    if line is None and isinstance(node, CommentedMap | CommentedSeq):
        line = node.lc.line + 1
    return line


def _field_name(loc: Sequence[str | int]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + part
    return out


class _FastLoader(yaml.CSafeLoader if hasattr(yaml, "CSafeLoader") else yaml.SafeLoader):  # type: ignore[misc]
    """libyaml's parser, resolving plain scalars as YAML 1.2's core schema does (as ruamel does).

    PyYAML resolves YAML 1.1: `no` and `on` would be booleans (`language: no`, Norwegian,
    would read as false), `1:30` a sexagesimal 90 and `2024-01-01` a date. Here only
    true/false, null/~, decimal, 0o and 0x integers and floats are resolved; the rest stays a
    string. A mapping with a repeated key is refused (ruamel refuses it too), so the
    round-trip loader can report it with its line.
    """

    # Start from no resolvers at all (the 1.1 ones are inherited otherwise); filled below.
    yaml_implicit_resolvers: ClassVar[dict[Any, Any]] = {}


class _DuplicateKey(Exception):
    pass


def _construct_mapping(loader: _FastLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    loader.flatten_mapping(node)
    pairs = loader.construct_pairs(node)
    mapping = dict(pairs)
    if len(mapping) != len(pairs):
        raise _DuplicateKey()
    return mapping


# YAML 1.2 core schema (https://yaml.org/spec/1.2.2/#1032-tag-resolution).
for _tag, _pattern, _first in (
    ("tag:yaml.org,2002:bool", r"^(?:true|True|TRUE|false|False|FALSE)$", "tTfF"),
    ("tag:yaml.org,2002:null", r"^(?:~|null|Null|NULL|)$", "~nN"),
    # ruamel also reads 0b binary and `_` digit separators; so do we, to agree with it.
    (
        "tag:yaml.org,2002:int",
        r"^(?:[-+]?[0-9][0-9_]*|0b[01_]+|0o[0-7_]+|0x[0-9a-fA-F_]+)$",
        "-+0123456789",
    ),
    (
        "tag:yaml.org,2002:float",
        r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
        r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$",
        "-+.0123456789",
    ),
    # ruamel keeps YAML 1.1's timestamps; a date where text is expected must fail alike.
    (
        "tag:yaml.org,2002:timestamp",
        r"^(?:[0-9]{4}-[0-9]{2}-[0-9]{2}|[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}"
        r"(?:[Tt]|[ \t]+)[0-9]{1,2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]*)?"
        r"(?:[ \t]*(?:Z|[-+][0-9]{1,2}(?::[0-9]{2})?))?)$",
        "0123456789",
    ),
):
    _FastLoader.add_implicit_resolver(_tag, re.compile(_pattern), list(_first))
_FastLoader.add_implicit_resolver("tag:yaml.org,2002:null", re.compile(r"^$"), [""])
_FastLoader.add_implicit_resolver("tag:yaml.org,2002:merge", re.compile(r"^<<$"), ["<"])


def _construct_int(loader: _FastLoader, node: yaml.ScalarNode) -> int:
    text = str(loader.construct_scalar(node)).replace("_", "")
    for prefix, base in (("0b", 2), ("0o", 8), ("0x", 16)):
        if text.startswith(prefix):
            return int(text[2:], base)
    return int(text, 10)  # YAML 1.2: a leading zero is decimal, not octal


def _construct_bool(loader: _FastLoader, node: yaml.ScalarNode) -> bool:
    return str(loader.construct_scalar(node)).lower() == "true"


_FastLoader.add_constructor("tag:yaml.org,2002:map", _construct_mapping)
_FastLoader.add_constructor("tag:yaml.org,2002:int", _construct_int)
_FastLoader.add_constructor("tag:yaml.org,2002:bool", _construct_bool)


def _fast_load(text: str) -> Any:
    """feeds.yaml -> plain data with libyaml; raises on anything the round-trip loader must explain."""
    return yaml.load(text, Loader=_FastLoader)  # a safe loader: builds only plain data


class _Replay(yaml.composer.Composer, yaml.constructor.SafeConstructor, yaml.resolver.Resolver):
    """Builds plain data from a list of parser events, resolving and constructing scalars
    exactly as `_FastLoader` does (its resolvers and constructors)."""

    yaml_implicit_resolvers = _FastLoader.yaml_implicit_resolvers
    yaml_constructors = _FastLoader.yaml_constructors

    def __init__(self, events: list[yaml.Event]) -> None:
        self._events = events[::-1]  # popped from the end
        yaml.composer.Composer.__init__(self)
        yaml.constructor.SafeConstructor.__init__(self)
        yaml.resolver.Resolver.__init__(self)

    def check_event(self, *choices: type[yaml.Event]) -> bool:
        return bool(self._events) and (not choices or isinstance(self._events[-1], choices))

    def peek_event(self) -> yaml.Event:
        return self._events[-1]

    def get_event(self) -> yaml.Event:
        return self._events.pop()


_START = (yaml.MappingStartEvent, yaml.SequenceStartEvent)
_END = (yaml.MappingEndEvent, yaml.SequenceEndEvent)


def _without_feed_list(events: Iterable[yaml.Event]) -> list[yaml.Event] | None:
    """The events of a document that is one mapping, with its top-level `feeds` entry (key and
    whole value) left out. None when the document is anything else, or has anchors or
    aliases (one could point into the list): such a file is read whole."""
    kept: list[yaml.Event] = []
    depth = 0  # collections open
    at_key = False  # in the top-level mapping, the next node is a key
    skipping = False  # inside the value of `feeds`
    skipped_depth = 0
    lists = documents = 0
    for event in events:
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None) is not None:
            return None
        if skipping:
            skipped_depth += 1 if isinstance(event, _START) else -1 if isinstance(event, _END) else 0
            skipping = skipped_depth > 0
            continue
        if isinstance(event, yaml.DocumentStartEvent):
            documents += 1
        elif isinstance(event, yaml.ScalarEvent) and depth == 1:
            if at_key and event.value == "<<":
                return None  # a merge key: it could bring a feed list of its own
            if at_key and event.value == "feeds":
                lists += 1
                skipping, skipped_depth = True, 0
                continue
            at_key = not at_key
        elif isinstance(event, _START):
            if (depth == 0 and not isinstance(event, yaml.MappingStartEvent)) or (depth == 1 and at_key):
                return None  # not a mapping at the top, or a key that is not a scalar
            depth += 1
            at_key = at_key or depth == 1
        elif isinstance(event, _END):
            depth -= 1
            if depth == 1:
                at_key = True  # a collection value ended
        kept.append(event)
    return kept if documents == 1 and lists <= 1 else None


def load_settings(path: str | Path, source: bytes | None = None) -> Config:
    """feeds.yaml without its feed list: the site, defaults and fetch settings, validated as
    `load_config` validates them, and `feeds` empty. For commands that show pages and need no
    feed list (`frontpage`; issue 15: "commands that need no feed list do not parse it"):
    libyaml's parser passes over the list without building or validating its entries, so the
    cost hardly grows with the number of feeds (10,000 feeds: about a fifth of `load_config`'s).

    Raises ConfigError as `load_config` does. A file this cannot read alone (not one mapping,
    anchors or aliases, settings that do not validate) is read whole by `load_config`, whose
    result (feeds included) is returned, or whose error is raised. A mistake inside the feed
    list itself is not seen here: `aggregator check` and every polling command see it.

    `source`: the file's bytes, when the caller has read them already (and keys what it
    keeps of the result by them: `settings.write_snapshot`); the file is then not read again."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8") if source is None else source.decode("utf-8")
        events = _without_feed_list(yaml.parse(text, Loader=_FastLoader))
        if events is not None:  # else read whole, below
            data = _Replay(events).get_single_data()
            if isinstance(data, dict) or data is None:  # None: an empty file
                return Config.model_validate({**(data or {}), "path": p})
    except (OSError, UnicodeDecodeError, yaml.YAMLError, _DuplicateKey, ValueError, TypeError):
        pass  # ValidationError is a ValueError; load_config says what and where
    if source is None:
        return load_config(p)
    try:
        return parse_config(source.decode("utf-8"), p)
    except UnicodeDecodeError as e:
        raise ConfigError(p, [(None, "", f"cannot read: {e}")]) from None


def load_config(path: str | Path) -> Config:
    """Read and validate feeds.yaml. Raises ConfigError naming file, line and field.

    The common, valid case is read with libyaml (PyYAML's C parser, YAML 1.2 scalars): 10,000
    feeds in well under a second. Only a file that fails somewhere is read again with
    ruamel's round-trip loader, whose line numbers the error messages need.
    """
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(p, [(None, "", "file not found")]) from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(p, [(None, "", f"cannot read: {e}")]) from None
    return parse_config(text, p)


def parse_config(text: str, path: Path) -> Config:
    """Validate the text of a feeds.yaml read from `path` (named in errors). Raises ConfigError."""
    try:
        data = _fast_load(text)
    except (yaml.YAMLError, _DuplicateKey, ValueError, TypeError):
        data = None  # the round-trip loader below says where and why
    else:
        if data is None:
            data = {}
        if isinstance(data, dict):
            try:
                config = Config.model_validate({**data, "path": path})
            except ValidationError:
                pass
            else:
                if not _duplicates(config, None):
                    return config
    return _parse_config_rt(text, path)


def _parse_config_rt(text: str, path: Path) -> Config:
    """The slow path: ruamel's round-trip tree gives every problem its line. ruamel is
    imported here, not with the module: a valid file never needs it (issue 15)."""
    from ruamel.yaml import YAML
    from ruamel.yaml.comments import CommentedMap
    from ruamel.yaml.error import MarkedYAMLError

    rt = YAML(typ="rt")
    try:
        tree = rt.load(text)
    except MarkedYAMLError as e:
        mark = e.problem_mark
        line = mark.line + 1 if mark is not None else None
        raise ConfigError(path, [(line, "", f"not valid YAML: {e.problem}")]) from None
    if tree is None:
        tree = CommentedMap()
    if not isinstance(tree, CommentedMap):
        raise ConfigError(path, [(1, "", "the top level must be a mapping (site:, feeds:, ...)")])
    try:
        config = Config.model_validate({**_plain(tree), "path": path})
    except ValidationError as e:
        problems = []
        for err in e.errors():
            loc = [p for p in err["loc"] if not (isinstance(p, str) and "[" in p)]
            msg = err["msg"].removeprefix("Value error, ")
            if err["type"] == "extra_forbidden":
                msg = "unknown field (check the spelling; see README for the fields)"
            elif err["type"] == "missing":
                msg = "required field is missing"
            problems.append((_line_of(tree, loc), _field_name(loc), msg))
        raise ConfigError(path, problems) from None
    problems = _duplicates(config, tree)
    if problems:
        raise ConfigError(path, problems)
    return config


def _duplicates(config: Config, tree: Any) -> list[tuple[int | None, str, str]]:
    """Feeds listed twice, by URL or by name; `tree` (ruamel's, or None) gives the lines."""
    problems: list[tuple[int | None, str, str]] = []
    seen: dict[str, int] = {}
    for i, feed in enumerate(config.feeds):
        key = feed.key
        if key in seen:
            problems.append(
                (
                    _line_of(tree, ["feeds", i, "url"]),
                    f"feeds[{i}].url",
                    f"duplicate url {key} (already listed as feeds[{seen[key]}])",
                )
            )
        seen.setdefault(key, i)
    names: dict[str, int] = {}
    for i, feed in enumerate(config.feeds):
        if feed.name and feed.name in names:
            problems.append(
                (
                    _line_of(tree, ["feeds", i, "name"]),
                    f"feeds[{i}].name",
                    f"duplicate name {feed.name!r} (already used by feeds[{names[feed.name]}])",
                )
            )
        if feed.name:
            names.setdefault(feed.name, i)
    return problems


def _plain(node: Any) -> Any:
    """ruamel's round-trip types -> plain dicts/lists, so pydantic sees ordinary data."""
    from ruamel.yaml.comments import CommentedMap, CommentedSeq

    if isinstance(node, CommentedMap):
        return {str(k): _plain(v) for k, v in node.items()}
    if isinstance(node, CommentedSeq):
        return [_plain(v) for v in node]
    return node
