"""Edits of feeds.yaml that keep the operator's file as written: comments, order, quoting, spacing.

`aggregator add` and `import-opml` append feeds here. The file is read with ruamel.yaml's
round-trip loader and written back with the indentation it already uses; an edit is refused
(never made approximately) when the file would not survive unchanged apart from the new
feeds, and when the result would not pass `aggregator check`. Writes are atomic.
"""

from __future__ import annotations

import contextlib
import difflib
import io
import os
import re
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import YAMLError

from .config import Config, ConfigError, FeedConfig, parse_config


class FeedsFileError(Exception):
    """feeds.yaml cannot be edited safely; the message says why and what to do instead."""


@dataclass(frozen=True, slots=True)
class NewFeed:
    """A feed to append: the feeds.yaml keys it will be written with (None: key left out)."""

    url: str
    name: str | None = None
    language: str | None = None
    interval: str | None = None

    def as_yaml_map(self) -> CommentedMap:
        """The `feeds[]` item, keys in the README's order."""
        item = CommentedMap()
        item["url"] = self.url
        for key in ("name", "language", "interval"):
            value = getattr(self, key)
            if value is not None:
                item[key] = value
        return item


@dataclass(frozen=True, slots=True)
class AppendPlan:
    """What appending would do: the feeds added, those skipped with the reason, the new text."""

    added: tuple[NewFeed, ...]
    skipped: tuple[tuple[NewFeed, str], ...]
    text: str
    config: Config  # the validated configuration of `text`
    inserted: str = ""  # the lines the edit inserts, as they appear in `text`


def _guess_indents(text: str) -> tuple[int, int, int]:
    """(mapping indent, sequence indent, dash offset) as ruamel's `YAML.indent` takes them.

    Measured from the file itself: the first nested key under a top-level key gives the
    mapping indent; the first block sequence item gives the dash's offset and the indent of
    the item's content. The README's layout (`feeds:` then `  - url:`) is 2, 4, 2.
    """
    mapping, dash, content = 2, 2, 4
    lines = text.splitlines()
    for i, line in enumerate(lines[:-1]):
        if re.match(r"^[^\s#-][^:#]*:\s*(#.*)?$", line):
            nxt = next((n for n in lines[i + 1 :] if n.strip() and not n.lstrip().startswith("#")), "")
            m = re.match(r"^( +)[^\s#-]", nxt)
            if m:
                mapping = len(m.group(1))
                break
    for line in lines:
        m = re.match(r"^( *)-( +)\S", line)
        if m:
            dash = len(m.group(1))
            content = dash + 1 + len(m.group(2))
            break
    return mapping, content, dash


def _yaml(text: str) -> YAML:
    mapping, sequence, offset = _guess_indents(text)
    rt = YAML(typ="rt")
    rt.preserve_quotes = True
    rt.width = 4096  # never fold a long URL or title onto two lines
    rt.indent(mapping=mapping, sequence=sequence, offset=offset)
    return rt


def _dump(rt: YAML, tree: Any) -> str:
    buf = io.StringIO()
    rt.dump(tree, buf)
    return buf.getvalue()


def feed_problem(feed: NewFeed) -> str | None:
    """Why `feed` could not be a feeds[] item (in `aggregator check`'s words), or None."""
    try:
        FeedConfig.model_validate(feed.as_yaml_map())
    except ValidationError as e:
        err = e.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        return f"{where}: {err['msg'].removeprefix('Value error, ')}"
    return None


def plan_append(
    text: str, path: Path, feeds: Sequence[NewFeed], number_taken_names: bool = False
) -> AppendPlan:
    """Append `feeds` to the feeds.yaml `text` (read from `path`, named in errors). Pure.

    A feed whose URL (as normalised by the config) is already configured, or comes earlier
    in `feeds`, is skipped with the reason, as is one with an invalid key. A feed whose name
    is taken is skipped too, or, with `number_taken_names` (an imported list, where two
    feeds may share a title), named "Name (2)", "Name (3)", ...
    Raises ConfigError when the current text is invalid, FeedsFileError when the file's
    layout would not survive the edit.
    """
    current = parse_config(text, path)  # the file must be valid before we touch it
    urls = {f.key for f in current.feeds}
    names = {f.name for f in current.feeds if f.name}
    added: list[NewFeed] = []
    skipped: list[tuple[NewFeed, str]] = []
    for feed in feeds:
        problem = feed_problem(feed)
        if problem:
            skipped.append((feed, problem))
            continue
        key = FeedConfig.model_validate({"url": feed.url}).key
        if key in urls:
            skipped.append((feed, f"already in {path.name}: url {key}"))
        elif feed.name and feed.name in names and not number_taken_names:
            skipped.append((feed, f"already in {path.name}: name {feed.name!r}"))
        else:
            if feed.name and feed.name in names:
                n = 2
                while f"{feed.name} ({n})" in names:
                    n += 1
                feed = replace(feed, name=f"{feed.name} ({n})")
            added.append(feed)
            urls.add(key)
            if feed.name:
                names.add(feed.name)
    if not added:
        return AppendPlan((), tuple(skipped), text, current)

    rt = _yaml(text)
    try:
        tree = rt.load(text)
    except YAMLError as e:  # parse_config accepted it, so this is unexpected; say so plainly
        raise FeedsFileError(f"{path}: cannot be edited: {e}") from None
    if tree is None:
        tree = CommentedMap()
    # Lines are inserted into the text, every other byte as it was (aligned values, trailing
    # spaces and all, which a re-dump would normalise); ruamel's dump only for odd layouts.
    items = tree.get("feeds")
    block = not tree.fa.flow_style()
    if block and isinstance(items, CommentedSeq) and items and not items.fa.flow_style():
        new_text = _insert_after_last_feed(rt, tree, items, added, text)
    elif block and "feeds" not in tree:
        body = text if not text or text.endswith("\n") else text + "\n"
        new_text = body + "feeds:\n" + _render(rt, added, spaced=False)
    elif block and (items is None or items == []) and _EMPTY_FEEDS.match(_line(text, tree)):
        lines = text.splitlines(keepends=True)
        at = tree.lc.key("feeds")[0]
        m = _EMPTY_FEEDS.match(lines[at])
        assert m is not None
        if m.group("brackets"):  # `[]` goes; the rest of the line (a comment) stays as it was
            line = lines[at][: m.start("brackets")] + lines[at][m.end("brackets") :]
            lines[at] = "feeds:\n" if line.strip() == "feeds:" else line
        new_text = _insert_after_last_feed(rt, tree, None, added, "".join(lines))
    else:
        new_text = _redump(rt, tree, added, text, path)
    try:
        config = parse_config(new_text, path)
    except ConfigError as e:
        raise FeedsFileError(
            f"{path}: the edit would not leave a valid file ({e}); add these lines under feeds: "
            "by hand:\n" + snippet(added)
        ) from None
    expected = [f.key for f in current.feeds] + [FeedConfig.model_validate({"url": f.url}).key for f in added]
    if [f.key for f in config.feeds] != expected or _settings(config) != _settings(current):
        raise FeedsFileError(
            f"{path}: its layout is unusual for the editor (the new feeds would not land under "
            "feeds:); add these lines there by hand:\n" + snippet(added)
        )
    return AppendPlan(tuple(added), tuple(skipped), new_text, config, _inserted(text, new_text))


def _settings(config: Config) -> object:
    return (config.site, config.defaults, config.fetch)


# `feeds:` with nothing, or `[]`, on its line; a comment after it is kept.
_EMPTY_FEEDS = re.compile(r"^feeds:[ \t]*(?P<brackets>\[[ \t]*\])?[ \t]*(?:#.*)?\r?\n?$")


def _line(text: str, tree: CommentedMap) -> str:
    lines = text.splitlines(keepends=True)
    at = tree.lc.key("feeds")[0]
    return lines[at] if at < len(lines) else ""


def _render(rt: YAML, feeds: Sequence[NewFeed], spaced: bool) -> str:
    """`feeds` as items of a top-level `feeds:` list, in this file's indentation."""
    rendered = _dump(rt, CommentedSeq(f.as_yaml_map() for f in feeds))
    if spaced:
        dash = _dash(rt)
        rendered = "\n" + rendered.replace("\n" + dash, "\n\n" + dash)
    return rendered


def _insert_after_last_feed(
    rt: YAML, tree: CommentedMap, items: CommentedSeq | None, added: Sequence[NewFeed], text: str
) -> str:
    """`text` with `added` rendered as feeds[] items and inserted after the last existing one.

    The feeds block ends where the next top-level key starts (or at the end of the file);
    blank lines and column-0 comments just before that (commented-out feeds, the next
    section's heading) stay after the new feeds.
    """
    lines = text.splitlines(keepends=True)
    keys = list(tree.keys())
    following = keys[keys.index("feeds") + 1 :]
    end = tree.lc.key(following[0])[0] if following else len(lines)
    while end > 0 and (not lines[end - 1].strip() or lines[end - 1].startswith("#")):
        end -= 1
    if end and not lines[end - 1].endswith("\n"):
        lines[end - 1] += "\n"
    spaced = items is not None and _blank_lines_between(items, text)
    return "".join(lines[:end]) + _render(rt, added, spaced) + "".join(lines[end:])


def _dash(rt: YAML) -> str:
    """How an item starts at the root with this YAML's indentation: spaces and '- '."""
    probe = _dump(rt, CommentedSeq([CommentedMap([("a", 1)])]))
    return probe[: probe.index("- ") + 2]


def _redump(rt: YAML, tree: CommentedMap, added: Sequence[NewFeed], text: str, path: Path) -> str:
    """Append through ruamel's tree (no feeds yet, `feeds: []`, or a flow list): only when
    writing the unchanged tree back reproduces the file exactly, so nothing else moves."""
    if _dump(rt, tree) != text and text.strip():
        raise FeedsFileError(
            f"{path}: writing it back would change more than the new feeds (its layout is "
            "unusual for the YAML editor); add these lines under feeds: by hand:\n" + snippet(added)
        )
    items = tree.get("feeds")
    if not isinstance(items, CommentedSeq):
        items = CommentedSeq()
        tree["feeds"] = items
    if not items:
        items.fa.set_block_style()  # `feeds: []` becomes a block list
    for feed in added:
        items.append(feed.as_yaml_map())
    return _dump(rt, tree)


def _blank_lines_between(items: CommentedSeq, text: str) -> bool:
    """Whether the file separates its feeds with blank lines (new ones then follow suit)."""
    if len(items) < 2:
        return False
    lines = text.splitlines()
    starts = [items.lc.item(i)[0] for i in range(1, len(items))]
    return all(0 < n <= len(lines) and not lines[n - 1].strip() for n in starts)


def _inserted(before: str, after: str) -> str:
    if after.startswith(before):
        return after[len(before) :]
    a, b = before.splitlines(keepends=True), after.splitlines(keepends=True)
    ops = difflib.SequenceMatcher(a=a, b=b, autojunk=False).get_opcodes()
    return "".join(line for op, _, _, j1, j2 in ops if op != "equal" for line in b[j1:j2])


def snippet(feeds: Sequence[NewFeed]) -> str:
    """The YAML lines that list `feeds` under `feeds:` (for `--dry-run` and adding by hand)."""
    rt = YAML(typ="rt")
    rt.width = 4096
    rt.indent(mapping=2, sequence=4, offset=2)
    seq = CommentedSeq([f.as_yaml_map() for f in feeds])
    return "".join("  " + line + "\n" for line in _dump(rt, seq).splitlines())


def append_feeds(
    path: Path, feeds: Sequence[NewFeed], dry_run: bool = False, number_taken_names: bool = False
) -> AppendPlan:
    """Append `feeds` to the file at `path` (see plan_append); with dry_run, only plan.

    The file is replaced atomically (a temporary file in the same directory, then renamed)
    and keeps its permissions. A missing file is created. Raises ConfigError, FeedsFileError,
    OSError.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        text = ""
    plan = plan_append(text, path, feeds, number_taken_names)
    if plan.added and not dry_run:
        write_atomically(path, plan.text)
    return plan


def write_atomically(path: Path, text: str) -> None:
    """Replace `path` with `text` (UTF-8) so that readers see the old file or the new, never half."""
    mode = path.stat().st_mode & 0o7777 if path.exists() else 0o644
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
