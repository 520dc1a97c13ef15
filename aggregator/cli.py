"""The `aggregator` command. Thin: parses arguments, calls the modules, prints results.

Each command imports what it needs inside its function, so a command pays only for its own
work: `frontpage`, `check`, `export-opml` and `--help` never load the poller (pipeline, fetch,
httpx, feedparser), and rich is loaded only where a table or a bar is drawn (issue 15;
tests/test_imports.py keeps it so, and says what is left: `status` takes two rules from
pipeline, and publish.py brings feedgen to `frontpage`).
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
import traceback
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import click

from . import logs

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

    from .config import Config, ConfigError, FeedConfig
    from .models import PollReport
    from .settings import Site
    from .store import Store


@cache
def _console() -> Console:
    """Standard error, through rich (progress bars, banners)."""
    from rich.console import Console

    return Console(stderr=True)


@cache
def _out() -> Console:
    """Standard output, through rich; external text is always printed with markup=False."""
    from rich.console import Console

    return Console(soft_wrap=True, highlight=False)


def __getattr__(name: str) -> Any:
    """`console` and `out`, the two consoles above, made on first use (PEP 562)."""
    if name == "console":
        return _console()
    if name == "out":
        return _out()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@dataclass
class Context:
    config_path: Path
    data_dir: Path
    store_url: str | None = None

    def config(self, *, feeds: bool = True) -> Config:
        """feeds.yaml, validated; exits 1 naming every problem. `feeds=False`: without the
        feed list (`config.load_settings`: its cost does not grow with the feeds), for
        commands that need only the site's settings."""
        from .config import ConfigError, load_config, load_settings

        try:
            return load_config(self.config_path) if feeds else load_settings(self.config_path)
        except ConfigError as e:
            _invalid(e)

    def site(self) -> Site:
        """The site's settings, for commands that only show pages (`frontpage`). While
        feeds.yaml's bytes are those of the last validation, its snapshot in DATA is read
        (`settings.read_snapshot`: no YAML, no pydantic); otherwise the settings are validated
        (exit 1 naming every problem, as `config`) and the snapshot written for next time."""
        from . import settings

        try:
            source = self.config_path.read_bytes()
        except OSError:
            return self.config(feeds=False).site  # which says why it cannot be read
        site = settings.read_snapshot(self.data_dir, source)
        if site is None:
            from .config import ConfigError, load_settings

            try:
                site = load_settings(self.config_path, source).site
            except ConfigError as e:
                _invalid(e)
            settings.write_snapshot(self.data_dir, source, site)
        return site

    def store(self, create: bool = False) -> Store:
        """The store in DATA; only `fetch` creates it (elsewhere a missing one is an error,
        never a silently empty site). AGGREGATOR_BUSY_TIMEOUT: seconds to wait for another
        process's write lock (default 10)."""
        from .store import BUSY_TIMEOUT, default_store_url, open_store

        try:
            timeout = float(os.environ.get("AGGREGATOR_BUSY_TIMEOUT", BUSY_TIMEOUT))
        except ValueError:
            timeout = BUSY_TIMEOUT
        return open_store(
            self.store_url or default_store_url(self.data_dir), create=create, busy_timeout=timeout
        )

    @property
    def public_dir(self) -> Path:
        return self.data_dir / "public"


def _invalid(e: ConfigError) -> NoReturn:
    """Exit 1 with every problem of feeds.yaml. Plain echo, not rich: one problem per
    unwrapped line, easy to grep and to click."""
    click.echo(f"invalid configuration:\n{e}", err=True)
    sys.exit(1)


pass_ctx = click.make_pass_decorator(Context)


class _Main(click.Group):
    """Turns the failures an operator must act on into one line and exit 1: the store's
    (disk full, read-only, locked, missing, corrupt) and the file system's. `-v` adds the
    traceback. Ctrl-C ends with one line and exit 130 (128 + SIGINT), stored work kept."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except Exception as e:
            if not (isinstance(e, OSError) or _is_store_error(e)):
                raise
            if ctx.params.get("verbose"):
                traceback.print_exc()
            click.echo(f"error: {_one_line(e)}", err=True)
            sys.exit(1)
        except KeyboardInterrupt:
            click.echo("interrupted: polls in flight were abandoned; what was stored is kept", err=True)
            sys.exit(130)


def _is_store_error(e: BaseException) -> bool:
    """Whether `e` is a StoreError, decided without importing the store (`--help` loads none):
    one can only have been raised once its module was loaded."""
    common = sys.modules.get(f"{__package__}.store.common")
    return common is not None and isinstance(e, common.StoreError)


def _one_line(e: BaseException) -> str:
    if isinstance(e, OSError) and not _is_store_error(e) and e.strerror:
        where = f"{e.filename}: " if e.filename else ""
        return f"{where}{e.strerror}"
    return " ".join(str(e).split()) or type(e).__name__


@click.group(cls=_Main, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option(
    "--config", "config_path", type=click.Path(path_type=Path), default="feeds.yaml",
    envvar="AGGREGATOR_CONFIG", show_default=True, show_envvar=True,
    help="The feeds.yaml to read.",
)  # fmt: skip
@click.option(
    "--data", "data_dir", type=click.Path(path_type=Path, file_okay=False), default="data",
    envvar="AGGREGATOR_DATA", show_default=True, show_envvar=True,
    help="Where the database (aggregator.db) and the published files (public/) live.",
)  # fmt: skip
@click.option(
    "--store", "store_url", default=None, envvar="AGGREGATOR_STORE", show_envvar=True, metavar="URL",
    help="The store: sqlite:///PATH (default: sqlite:///DATA/aggregator.db) or postgresql://… "
    "(shared by `aggregator worker`s).",
)  # fmt: skip
@click.option("-v", "--verbose", count=True,
              help="-v: log every poll, not only failures and publishes; -vv: also every HTTP request; "
              "with an error, show its traceback.")  # fmt: skip
@click.option("--log-format", type=click.Choice(["text", "json"]), default="text", show_default=True,
              envvar="AGGREGATOR_LOG_FORMAT",
              help="json: one JSON object per line, for log shippers.")  # fmt: skip
@click.version_option(package_name="aggregator")
@click.pass_context
def main(
    ctx: click.Context,
    config_path: Path,
    data_dir: Path,
    store_url: str | None,
    verbose: int,
    log_format: str,
) -> None:
    """Poll multilingual feeds, keep every entry in SQLite, republish daily front pages.

    \b
    Typical use:
      aggregator check                  validate feeds.yaml
      aggregator fetch                  poll every feed once, store, publish
      aggregator frontpage --lang all   print today's front page as text
      aggregator run                    poll on schedule and serve on 127.0.0.1:8080
    """
    logs.configure(verbose, log_format)
    ctx.obj = Context(config_path, data_dir, store_url or None)


@main.command()
@pass_ctx
def check(ctx: Context) -> None:
    """Validate feeds.yaml; exit 1 naming file, line and field of every problem.

    \b
    Example:
      aggregator --config feeds.yaml check
    """
    config = ctx.config()
    langs = ", ".join(config.site.languages)
    _out().print(f"{ctx.config_path}: ok — {len(config.feeds)} feeds, languages {langs}", markup=False)


@main.command()
@click.option("--feed", "feed_names", multiple=True, metavar="NAME",
              help="Poll only this feed (its name or URL); repeatable.")  # fmt: skip
@click.option("--no-publish", is_flag=True, help="Store only; do not rebuild the outputs.")
@pass_ctx
def fetch(ctx: Context, feed_names: tuple[str, ...], no_publish: bool) -> None:
    """Poll feeds now, store new entries and republish.

    Exits 0 when the run completed, even if some feeds failed; the failures are listed.

    \b
    Examples:
      aggregator fetch
      aggregator fetch --feed "IDOM English"
    """
    import asyncio

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from .pipeline import poll_many
    from .policy import sync_feeds
    from .publish import nothing_to_publish, owed_changes
    from .publish import publish as publish_all

    config = ctx.config()
    feeds = [f for f in config.feeds if f.enabled]
    if feed_names:
        feeds = []
        for name in feed_names:
            found = config.feed(name)
            if found is None:
                raise click.BadParameter(f"no feed named {name!r} in {ctx.config_path}", param_hint="--feed")
            feeds.append(found)
    store = ctx.store(create=True)
    try:
        sync_feeds(config, store)
        started = datetime.now(UTC)
        with Progress(
            TextColumn("polling"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
            console=_console(), transient=True, disable=not _console().is_terminal,
        ) as progress:  # fmt: skip
            task = progress.add_task("poll", total=len(feeds))
            plain = _PlainProgress(len(feeds)) if not _console().is_terminal else None

            def done(report: PollReport) -> None:
                progress.advance(task)
                if plain:
                    plain.advance()

            reports = asyncio.run(
                poll_many(
                    feeds,
                    config,
                    store,
                    on_done=done,
                    retry_gone=bool(feed_names),  # naming a gone feed asks to try it again
                )
            )
        elapsed = (datetime.now(UTC) - started).total_seconds()
        failed_files: tuple[tuple[str, str], ...] = ()
        up_to_date = False
        if not no_publish:
            # Incremental when the tree was last published whole by this code and config:
            # the days the store says are owed (this fetch's and any earlier unpublished ones).
            now = datetime.now(UTC)
            owed, changed = owed_changes(store, config, ctx.public_dir, now)
            up_to_date = nothing_to_publish(store, config, changed)  # then none is made
            try:
                if not up_to_date:
                    failed_files = publish_all(
                        store, config, ctx.public_dir, now=now, changed_days=changed
                    ).failed
            except BaseException:
                store.mark_unpublished(owed)
                raise
            if failed_files:
                store.mark_unpublished(owed)
        _print_fetch_summary(reports, elapsed)
        if up_to_date:
            _out().print(f"nothing changed: {ctx.public_dir} is up to date", markup=False)
        for path, error in failed_files:
            _out().print(f"  NOT PUBLISHED  {path}: {error} (its last good version stays)", markup=False)
    finally:
        store.close()


class _PlainProgress:
    """Progress for logs and pipes, where a bar would be noise: a line on standard error every
    10 seconds while polling lasts ("polled 1,200 of 10,000 feeds in 10 s")."""

    EVERY = 10.0  # seconds

    def __init__(self, total: int) -> None:
        self.total, self.done = total, 0
        self.started = self.last = time.monotonic()

    def advance(self) -> None:
        self.done += 1
        now = time.monotonic()
        if now - self.last >= self.EVERY and self.done < self.total:
            self.last = now
            click.echo(
                f"polled {self.done:,} of {self.total:,} feeds in {now - self.started:.0f} s", err=True
            )


def _print_fetch_summary(reports: list[PollReport], elapsed: float) -> None:
    from .models import Outcome

    skipped = [r for r in reports if r.skipped]
    polled = [r for r in reports if not r.skipped]
    good = (Outcome.OK, Outcome.NOT_MODIFIED)
    ok = [r for r in polled if r.outcome in good]
    failed = [r for r in polled if r.outcome not in good]
    new = sum(r.inserted for r in reports)
    # markup=False: names and errors are external text ("HTTP 500 Oops [/x]"), never markup.
    _out().print(
        f"polled {len(polled)} feeds in {elapsed:.1f} s: {len(ok)} ok, {len(failed)} failed; "
        f"{new} new, {sum(r.updated for r in reports)} updated, "
        f"{sum(r.merged for r in reports)} merged from other feeds"
        + (f"; {len(skipped)} skipped (gone)" if skipped else ""),
        markup=False,
    )
    for r in ok:
        if r.warning:
            _out().print(f"  warning  {r.feed_name}: {r.warning}", markup=False)
    for r in failed:
        _out().print(f"  FAILED   {r.feed_name}: {r.error}", markup=False)
    for r in skipped:
        _out().print(f"  SKIPPED  {r.feed_name}: {r.error}", markup=False)


@main.command()
@pass_ctx
def publish(ctx: Context) -> None:
    """Rebuild every output under DATA/public from the stored entries."""
    from .policy import sync_feeds
    from .publish import publish as publish_all

    config = ctx.config()
    store = ctx.store()
    try:
        sync_feeds(config, store)
        owed = store.take_unpublished()  # a whole rebuild settles what was owed...
        try:
            report = publish_all(store, config, ctx.public_dir)
        except BaseException:
            store.mark_unpublished(owed)  # ...unless it did not finish
            raise
    finally:
        store.close()
    _out().print(
        f"wrote {len(report.written)} files, {report.unchanged} unchanged, in {ctx.public_dir}", markup=False
    )
    for path, error in report.failed:
        _out().print(f"  NOT PUBLISHED  {path}: {error} (its last good version stays)", markup=False)
    if report.failed:
        sys.exit(1)


@main.command()
@click.option("--date", "day", type=click.DateTime(formats=["%Y-%m-%d"]), default=None,
              help="Day (YYYY-MM-DD) in site.timezone. Default: the latest day with entries.")  # fmt: skip
@click.option("--lang", "language", default="all", show_default=True,
              help="A language from site.languages, or 'all'.")  # fmt: skip
@click.option("--format", "fmt", type=click.Choice(["text", "html", "json"]), default="text",
              show_default=True)  # fmt: skip
@pass_ctx
def frontpage(ctx: Context, day: datetime | None, language: str, fmt: str) -> None:
    """Print a day's front page: the date, then each entry's title and lede.

    \b
    Examples:
      aggregator frontpage --date 2023-01-17 --lang all --format text
      aggregator frontpage --lang es --format json
    """
    from . import render
    from .frontpages import frontpage as build_frontpage
    from .store import StoreError

    site = ctx.site()  # a page needs the site's settings, not the feed list...
    if language != "all" and language not in site.languages:
        raise click.BadParameter(
            f"{language!r} is not in site.languages ({', '.join(site.languages)}) or 'all'",
            param_hint="--lang",
        )
    store = ctx.store()
    try:
        try:
            # Days are stored in site.timezone; after an edit of it, move them first (a read
            # when nothing changed), as fetch and publish do (README "Dates").
            store.sync_zone(site.zone)
        except StoreError as e:  # read-only or locked: the page in the zone of the last fetch
            click.echo(f"warning: days not moved to {site.timezone}: {_one_line(e)}", err=True)
        page = build_frontpage(store, site, language, day.date() if day else None)
        if page.day is None:  # ...except the page without entries, which lists failing feeds
            feeds = [f.key for f in ctx.config().feeds]
            page = build_frontpage(store, site, language, day.date() if day else None, feeds=feeds)
    finally:
        store.close()
    if fmt == "text":
        sys.stdout.write(render.frontpage_text(page, site))
    elif fmt == "json":
        sys.stdout.write(render.frontpage_json(page))
    else:
        sys.stdout.write(render.frontpage_html(page, site))


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--feed", "feed_name", default=None, metavar="NAME", help="One feed's recent poll history.")
@pass_ctx
def status(ctx: Context, as_json: bool, feed_name: str | None) -> None:
    """A table of every feed: language, last poll, HTTP status, entries stored, last error."""
    from .policy import sync_feeds

    config = ctx.config()
    store = ctx.store()
    try:
        sync_feeds(config, store)
        if feed_name:
            _feed_history(ctx, config, store, feed_name, as_json)
            return
        configured = {f.key: f for f in config.feeds}
        stats = [s for s in store.feed_stats() if s.state.url in configured]
        now = datetime.now(UTC)
        intervals = {s.state.url: _interval_words(config, configured[s.state.url], store, now) for s in stats}
        total = store.count_entries()
        languages = store.language_counts()
    finally:
        store.close()
    from .caching import cache_max_age
    from .error_kinds import error_kind

    outside = {k: v for k, v in languages.items() if k not in config.site.languages}
    max_age = cache_max_age(config)  # what `run` and `serve` send; an nginx in front needs the same
    if as_json:
        doc: dict[str, Any] = {
            "feeds": [
                {
                    "name": s.state.name,
                    "url": s.state.url,
                    "language": s.language,
                    "last_polled": _iso(s.state.last_polled),
                    "status": s.state.last_status,
                    "outcome": s.state.last_outcome,
                    "entries": s.entries,
                    "seen": s.seen_in,
                    "error_count": s.state.error_count,
                    "last_error": s.state.last_error,
                    "error_kind": error_kind(s.state.last_outcome, s.state.last_status, s.state.last_error),
                    "warning": s.state.warning,
                    "next_poll": _iso(s.state.next_poll),
                    "interval": intervals[s.state.url][0],
                    "interval_seconds": intervals[s.state.url][1],
                    "enabled": configured[s.state.url].enabled,
                    "moved_to": s.state.permanent_url,
                    "gone": s.state.gone,
                }
                for s in stats
            ],
            "entries_total": total,
            "entries_by_language": languages,
            "entries_outside_site_languages": sum(outside.values()),
            "cache_max_age": max_age,
        }
        sys.stdout.write(json.dumps(doc, ensure_ascii=False, indent=2) + "\n")
        return
    from rich import box
    from rich.table import Table
    from rich.text import Text

    width = _table_width()
    # Fewer, shorter columns as the terminal narrows: the feed's name and the words of its
    # last error are what an operator looks for, so they are never the ones dropped.
    wide, middle = width >= 140, width >= 100
    columns = ["feed"]
    columns += ["lang"] if middle else []
    columns += ["polled", "HTTP"]
    columns += ["entries"] if middle else []
    columns += ["errors", "every"] if wide else []
    columns += ["next"] if middle else []
    columns += ["last error / warning"]
    table = Table(
        title=f"{len(stats)} feeds, {total} entries stored",
        box=box.HEAVY_HEAD if middle else box.SIMPLE_HEAD,
        pad_edge=middle,
        collapse_padding=not middle,
    )
    longest_name = max((len(s.state.name) for s in stats), default=4)
    for col in columns:
        # Short columns never wrap; the feed name and the words of an error take what is left.
        wraps = col in ("feed", "last error / warning")
        table.add_column(
            col,
            overflow="fold",
            no_wrap=not wraps,
            ratio=1 if wraps else None,
            min_width=min(longest_name, 24 if middle else 16) if col == "feed" else None,
        )
    for s in stats:
        notes = [s.state.last_error or "", s.state.warning or ""]
        if s.state.gone:
            notes[0] = "410 Gone: no longer polled (its entries are kept); remove it from feeds.yaml"
        if s.state.permanent_url:
            notes.insert(0, f"moved permanently to {s.state.permanent_url}: update feeds.yaml")
        next_poll = _relative(s.state.next_poll, now)
        if s.state.next_poll is not None and s.state.next_poll <= now:
            next_poll = "due"  # overdue: nothing is polling (no `run`), or it is about to
        if s.state.gone or not configured[s.state.url].enabled:
            next_poll = "never" if s.state.gone else "disabled"
        # Text cells: feed names, errors and URLs are external text, never rich markup.
        cells: dict[str, str | Text] = {
            "feed": Text(s.state.name),
            "lang": Text(s.language),
            "polled": _relative(s.state.last_polled, now),
            "HTTP": str(s.state.last_status or "—"),
            "entries": str(s.seen_in),
            "errors": str(s.state.error_count),
            "every": intervals[s.state.url][0],
            "next": next_poll,
            "last error / warning": Text("; ".join(n for n in notes if n)),
        }
        table.add_row(*(cells[c] for c in columns))
    _print_table(table)
    counts = ", ".join(f"{k}: {v}" for k, v in languages.items())
    _table_console().print(  # wrapped at the table's width, like the table
        f"by language: {counts or '—'}; outside site.languages: {sum(outside.values())}", markup=False
    )
    _table_console().print(
        f"served with Cache-Control: public, max-age={max_age} (shortest poll interval; "
        "give nginx or a CDN in front the same, see deploy/nginx.conf)",
        markup=False,
    )


def _feed_history(ctx: Context, config: Config, store: Store, name: str, as_json: bool) -> None:
    feed = config.feed(name)
    if feed is None:
        raise click.BadParameter(f"no feed named {name!r} in {ctx.config_path}", param_hint="--feed")
    from rich.table import Table
    from rich.text import Text

    from .error_kinds import error_kind

    rows = store.fetch_log(feed.key)
    if as_json:
        rows = [{**r, "error_kind": error_kind(r["outcome"], r["status"], r["error"])} for r in rows]
        sys.stdout.write(json.dumps({"feed": feed.key, "polls": rows}, indent=2) + "\n")
        return
    table = Table(title=Text(f"{feed.title}: last {len(rows)} polls"))
    for col in ("started (UTC)", "URL", "HTTP", "bytes", "ms", "outcome", "error"):
        table.add_column(col, overflow="fold")
    for r in rows:
        url = "" if r["url"] == feed.key else r["url"]  # only shown when it differs (redirects)
        table.add_row(r["started"], Text(url), str(r["status"] or "—"), str(r["bytes"] or "—"),
                      f"{r['duration_ms'] or 0:.0f}", r["outcome"], Text(r["error"] or ""))  # fmt: skip
    _print_table(table)


def _table_width() -> int:
    """Columns to lay tables out in: the terminal's; through a pipe or into a file, $COLUMNS
    when set (a caller asking for a width), else 200 (rich would assume 80)."""
    if _out().is_terminal:
        return _out().width
    columns = os.environ.get("COLUMNS", "")
    return max(int(columns), 40) if columns.isdigit() else 200


def _table_console() -> Console:
    """A console that wraps at `_table_width()`."""
    from rich.console import Console

    return Console(highlight=False, width=_table_width(), soft_wrap=False)


def _print_table(table: Table) -> None:
    """Print `table` at `_table_width()`: no line is wider than that."""
    _table_console().print(table)


def _relative(value: datetime | None, now: datetime) -> str:
    """'3 min ago', 'in 12 min', 'just now', '2 d ago'; '—' for never."""
    if value is None:
        return "—"
    seconds = (value - now).total_seconds()
    size = abs(seconds)
    if size < 60:
        return "just now" if seconds <= 0 else "in <1 min"
    for unit, length in (("d", 86400), ("h", 3600), ("min", 60)):
        if size >= length:
            amount = f"{int(size // length)} {unit}"
            break
    return f"{amount} ago" if seconds < 0 else f"in {amount}"


def _interval_words(config: Config, feed: FeedConfig, store: Store, now: datetime) -> tuple[str, int]:
    """The feed's poll interval before back-off, as words and seconds ("auto: 3h 30m")."""
    from .policy import WEEK, poll_interval

    interval = poll_interval(feed, config, lambda: store.entries_published_since(feed.key, now - WEEK))
    seconds = int(interval.total_seconds())
    words = _duration(seconds)
    return (f"auto: {words}" if config.interval_for(feed) == "auto" else words), seconds


def _duration(seconds: int) -> str:
    parts: list[str] = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if seconds >= size or (not parts and unit == "s"):
            parts.append(f"{seconds // size}{unit}")
            seconds %= size
    return " ".join(parts[:2])


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8080, show_default=True, type=int)
@pass_ctx
def serve(ctx: Context, host: str, port: int) -> None:
    """Serve DATA/public over HTTP without polling (see `run` for both). Ctrl-C stops it.

    \b
    Example:
      aggregator serve --port 8080
    """
    import signal

    from .serve import create_app, make_server, serve_forever

    signal.signal(signal.SIGTERM, signal.default_int_handler)  # until the server takes it over
    # The configuration, when there is one, sets Cache-Control (poll intervals, time zone).
    config = ctx.config() if ctx.config_path.exists() else None
    with contextlib.suppress(KeyboardInterrupt):
        serve_forever(make_server(create_app(ctx.public_dir, config=config), host, port))


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8080, show_default=True, type=int)
@click.option("--poll-now", is_flag=True,
              help="Poll every feed at start-up, whatever its stored next poll time says.")  # fmt: skip
@pass_ctx
def run(ctx: Context, host: str, port: int, poll_now: bool) -> None:
    """The main job: poll every feed on its schedule and serve the outputs. Ctrl-C stops it.

    \b
    Example:
      aggregator run --port 8080
    then open http://127.0.0.1:8080/ or subscribe to http://127.0.0.1:8080/feeds/all.atom
    """
    import signal

    from .schedule import Service, StartupError

    # SIGTERM stops the job like Ctrl-C (exit 0), even before the server takes signals over.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    config = ctx.config()
    banner = f"serving {ctx.public_dir} on http://{host}:{port}/ — polling {len(config.feeds)} feeds"
    try:
        # A second Ctrl-C during the shutdown abandons what is left: the files are only ever
        # renamed into place whole, and the store's transactions are atomic.
        with contextlib.suppress(KeyboardInterrupt):
            Service(
                config, ctx.data_dir, store_url=ctx.store_url, config_path=ctx.config_path, poll_now=poll_now
            ).run(host, port, on_start=lambda: _console().print(banner))
        # Stopped and saved: a late signal must not turn the exit status into "killed" while the
        # interpreter tears down (it restores the default handlers for that).
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, signal.SIG_IGN)
    except StartupError as e:
        click.echo(f"aggregator run: {e}", err=True)  # plain: the path must not be read as markup
        sys.exit(1)


# -- editing feeds.yaml: add, import-opml, export-opml (aggregator.feeds_file, discover, opml) --

if TYPE_CHECKING:
    from .config import FetchSettings
    from .discover import Discovered
    from .feeds_file import AppendPlan, NewFeed


def _fetch_settings(ctx: Context) -> FetchSettings:
    """The configured fetch limits when feeds.yaml exists (it must then be valid), else defaults."""
    from .config import FetchSettings

    return ctx.config().fetch if ctx.config_path.exists() else FetchSettings()


def _append(ctx: Context, feeds: list[NewFeed], dry_run: bool, number_names: bool = False) -> AppendPlan:
    from .config import ConfigError
    from .feeds_file import FeedsFileError, append_feeds

    try:
        return append_feeds(ctx.config_path, feeds, dry_run=dry_run, number_taken_names=number_names)
    except ConfigError as e:
        click.echo(f"invalid configuration:\n{e}", err=True)
        sys.exit(1)
    except (FeedsFileError, OSError) as e:
        click.echo(str(e), err=True)
        sys.exit(1)


@main.command()
@click.argument("url")
@click.option(
    "--language",
    default=None,
    metavar="CODE",
    help="BCP 47 code, or auto. Default: what the feed declares, else auto.",
)
@click.option("--name", default=None, help="A unique name. Default: the feed's title.")
@click.option(
    "--interval", default=None, metavar="DURATION", help="e.g. 30m, 1h or auto. Default: defaults.interval."
)
@click.option("--dry-run", is_flag=True, help="Show what would be added; change nothing.")
@pass_ctx
def add(
    ctx: Context, url: str, language: str | None, name: str | None, interval: str | None, dry_run: bool
) -> None:
    """Subscribe to a feed: find it, check that it parses, append it to feeds.yaml.

    URL may be the feed itself or a web page that advertises feeds with <link rel="alternate">
    (the first that answers and parses is taken). feeds.yaml keeps its comments and layout;
    a feed whose URL or name is already there is refused.

    \b
    Examples:
      aggregator add https://www.marxist.com/
      aggregator add https://example.org/feed.xml --language es --name "Example (ES)" --interval 1h
      aggregator add https://example.org/ --dry-run
    """
    import asyncio

    from .config import normalise_language_tag
    from .discover import DiscoveryError, default_fetcher, discover
    from .feeds_file import NewFeed, feed_problem

    given = NewFeed(url=url, language=language, interval=interval)
    problem = feed_problem(given)
    if problem:
        click.echo(f"no feed added: {problem}", err=True)
        sys.exit(2)
    settings = _fetch_settings(ctx)

    async def find() -> Discovered:
        async with default_fetcher(settings) as fetcher:
            return await discover(url, fetcher)

    try:
        found = asyncio.run(find())
    except DiscoveryError as e:
        click.echo(f"no feed added: {e}", err=True)
        sys.exit(1)
    if language is None:
        language = "auto"
        if found.language:
            with contextlib.suppress(ValueError):
                language = normalise_language_tag(found.language)
    feed = NewFeed(url=found.url, name=name or found.title or None, language=language, interval=interval)
    plan = _append(ctx, [feed], dry_run)
    if plan.skipped:
        _, why = plan.skipped[0]
        hint = "; choose another with --name" if ": name " in why else ""
        click.echo(f"no feed added: {why}{hint}", err=True)
        sys.exit(1)
    where = f" (found on {found.page_url})" if found.page_url else ""
    verb = "would add" if dry_run else "added"
    entries = f"{found.entries} {'entry' if found.entries == 1 else 'entries'}"
    _out().print(f"{verb} to {ctx.config_path}: {found.format}, {entries}{where}")
    click.echo(plan.inserted, nl=False)
    if found.also_advertised:
        _out().print("the page also advertises: " + ", ".join(found.also_advertised))
    if dry_run:
        _out().print(f"dry run: {ctx.config_path} not changed")


@main.command("import-opml")
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False, exists=True))
@click.option("--dry-run", is_flag=True, help="Show what would be added; change nothing.")
@pass_ctx
def import_opml(ctx: Context, file: Path, dry_run: bool) -> None:
    """Append the feeds of an OPML subscription list to feeds.yaml.

    Every outline with an xmlUrl becomes a feed (name from its title, language from its
    language attribute, else auto). Feeds already in feeds.yaml (same URL) are skipped and
    listed; a taken name gets a number ("Name (2)"). feeds.yaml keeps its comments and layout.
    Feeds are not fetched.

    \b
    Examples:
      aggregator import-opml subscriptions.opml
      aggregator import-opml subscriptions.opml --dry-run
    """
    from .feeds_file import NewFeed
    from .opml import OpmlError, read_opml

    try:
        found = read_opml(file.read_bytes())
    except (OpmlError, OSError) as e:
        click.echo(f"{file}: {e}", err=True)
        sys.exit(1)
    for item in found:
        if item.note:
            click.echo(f"NOTE {item.url}: {item.note}", err=True)
    feeds = [NewFeed(url=f.url, name=f.title, language=f.language) for f in found]
    plan = _append(ctx, feeds, dry_run, number_names=True)
    for feed, why in plan.skipped:
        _out().print(f"SKIPPED {feed.url}: {why}")
    verb = "would add" if dry_run else "added"
    _out().print(
        f"{verb} {len(plan.added)} of {len(found)} feeds from {file} to {ctx.config_path}"
        + (f"; {len(plan.skipped)} skipped" if plan.skipped else "")
    )
    if dry_run:
        click.echo(plan.inserted, nl=False)
        _out().print(f"dry run: {ctx.config_path} not changed")


@main.command("export-opml")
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Write to FILE instead of standard output.",
)
@pass_ctx
def export_opml(ctx: Context, output: Path | None) -> None:
    """Write the configured feeds as an OPML 2.0 subscription list, grouped by language.

    Titles of unnamed feeds come from the store when it exists.

    \b
    Examples:
      aggregator export-opml -o subscriptions.opml
      aggregator export-opml | less
    """
    from .opml import sources_opml

    config = ctx.config()
    titles: dict[str, str] = {}
    if ctx.store_url or (ctx.data_dir / "aggregator.db").exists():  # a named store is read
        with contextlib.closing(ctx.store()) as store:
            titles = {url: s.title for url, s in store.feed_states().items() if s.title}
    data = sources_opml(config.site, config.feeds, titles=titles, created=datetime.now(UTC))
    if output is None:
        sys.stdout.buffer.write(data)
        return
    from .feeds_file import write_atomically  # (ruamel.yaml: only when writing a file)

    write_atomically(output, data.decode("utf-8"))
    _console().print(f"wrote {len(config.feeds)} feeds to {output}")


# -- scaled out: several pollers on one PostgreSQL (aggregator.worker, issue 16) --


@main.command()
@click.option("--concurrency", type=click.IntRange(1, 256), default=4, show_default=True,
              help="Jobs this worker runs at once (each polls a batch of feeds).")  # fmt: skip
@click.option("--lease", default="15m", show_default=True, metavar="DURATION",
              help="How long a claimed feed is this worker's before another may poll it.")  # fmt: skip
@click.option("--batch", type=click.IntRange(1, 1000), default=25, show_default=True,
              help="Feeds per poll job.")  # fmt: skip
@click.option("--dispatch-every", type=click.Choice(["1", "2", "3", "5", "10", "15", "20", "30"]),
              default="10", show_default=True,
              help="Seconds between dispatches of due feeds.")  # fmt: skip
@click.option("--no-publish", is_flag=True, help="Never publish from this worker.")
@click.option("--migrate", is_flag=True,
              help="Bring the store's schema and procrastinate's tables to this version, then exit "
              "(refused while other workers run).")  # fmt: skip
@pass_ctx
def worker(
    ctx: Context,
    concurrency: int,
    lease: str,
    batch: int,
    dispatch_every: str,
    no_publish: bool,
    migrate: bool,
) -> None:
    """Poll feeds as one of several workers sharing a PostgreSQL store (procrastinate).

    Every worker dispatches due feeds (one of them each 10 s), polls batches of them and
    publishes to DATA/public when something changed (one worker at a time). Run as many as
    you like, on one machine or several, with the same --store and feeds.yaml. Ctrl-C stops
    one; its claimed feeds return to the others when their leases end. Refused while
    `aggregator run` polls the same store. After an upgrade of procrastinate, the first
    worker to start alone applies its migrations (`--migrate` does only that).

    \b
    Example:
      export AGGREGATOR_STORE=postgresql://aggregator@127.0.0.1/aggregator
      aggregator worker --concurrency 8 &
      aggregator worker --concurrency 8 &
      aggregator serve
    """
    import asyncio

    from .config import parse_duration
    from .worker import STALLED_AFTER, WorkerSettings, run_worker
    from .worker import migrate as migrate_schemas

    if not (ctx.store_url or "").startswith(("postgresql://", "postgres://")):
        raise click.UsageError(
            "worker needs a PostgreSQL store: --store postgresql://… (or AGGREGATOR_STORE)"
        )
    assert ctx.store_url is not None
    ctx.config()  # a broken feeds.yaml is reported as for every other command
    lease_time = parse_duration(lease)
    settings = WorkerSettings(
        config_path=ctx.config_path,
        store_url=ctx.store_url,
        public_dir=None if no_publish else ctx.public_dir,
        lease=lease_time,
        batch=batch,
        dispatch_every=int(dispatch_every),
        # A dead worker's jobs are failed before its leases end, so its buckets are free
        # when its feeds come back.
        stalled_after=min(STALLED_AFTER, lease_time.total_seconds() / 2),
    )
    if migrate:
        migrate_schemas(settings)
        _console().print("the store's schema and procrastinate's tables are up to date")
        return
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run_worker(settings, concurrency))


if __name__ == "__main__":
    main()
