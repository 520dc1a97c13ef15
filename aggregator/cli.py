"""The `aggregator` command. Thin: parses arguments, calls the modules, prints results."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from . import render
from .config import Config, ConfigError, FeedConfig, load_config
from .models import Outcome, PollReport
from .pipeline import WEEK, poll_interval, poll_many, sync_feeds
from .publish import frontpage as build_frontpage
from .publish import publish as publish_all
from .store import Store

console = Console(stderr=True)
out = Console(soft_wrap=True, highlight=False)


@dataclass
class Context:
    config_path: Path
    data_dir: Path

    def config(self) -> Config:
        try:
            return load_config(self.config_path)
        except ConfigError as e:
            # Plain echo, not rich: one problem per unwrapped line, easy to grep and to click.
            click.echo(f"invalid configuration:\n{e}", err=True)
            sys.exit(1)

    def store(self) -> Store:
        return Store(self.data_dir / "aggregator.db")

    @property
    def public_dir(self) -> Path:
        return self.data_dir / "public"


pass_ctx = click.make_pass_decorator(Context)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
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
@click.option("-v", "--verbose", is_flag=True, help="Log every poll, not only failures.")
@click.version_option(package_name="aggregator")
@click.pass_context
def main(ctx: click.Context, config_path: Path, data_dir: Path, verbose: bool) -> None:
    """Poll multilingual feeds, keep every entry in SQLite, republish daily front pages.

    \b
    Typical use:
      aggregator check                  validate feeds.yaml
      aggregator fetch                  poll every feed once, store, publish
      aggregator frontpage --lang all   print today's front page as text
      aggregator run                    poll on schedule and serve on 127.0.0.1:8080
    """
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    ctx.obj = Context(config_path, data_dir)


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
    out.print(f"{ctx.config_path}: ok — {len(config.feeds)} feeds, languages {langs}")


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
    config = ctx.config()
    feeds = [f for f in config.feeds if f.enabled]
    if feed_names:
        feeds = []
        for name in feed_names:
            found = config.feed(name)
            if found is None:
                raise click.BadParameter(f"no feed named {name!r} in {ctx.config_path}", param_hint="--feed")
            feeds.append(found)
    store = ctx.store()
    try:
        sync_feeds(config, store)
        started = datetime.now(UTC)
        with Progress(
            TextColumn("polling"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
            console=console, transient=True, disable=not console.is_terminal,
        ) as progress:  # fmt: skip
            task = progress.add_task("poll", total=len(feeds))
            reports = asyncio.run(
                poll_many(
                    feeds,
                    config,
                    store,
                    on_done=lambda r: progress.advance(task),
                    retry_gone=bool(feed_names),  # naming a gone feed asks to try it again
                )
            )
        elapsed = (datetime.now(UTC) - started).total_seconds()
        if not no_publish:
            publish_all(store, config, ctx.public_dir)
        _print_fetch_summary(reports, elapsed)
    finally:
        store.close()


def _print_fetch_summary(reports: list[PollReport], elapsed: float) -> None:
    skipped = [r for r in reports if r.skipped]
    polled = [r for r in reports if not r.skipped]
    ok = [r for r in polled if r.outcome in (Outcome.OK, Outcome.NOT_MODIFIED)]
    failed = [r for r in polled if r not in ok]
    new = sum(r.inserted for r in reports)
    out.print(
        f"polled {len(polled)} feeds in {elapsed:.1f} s: {len(ok)} ok, {len(failed)} failed; "
        f"{new} new, {sum(r.updated for r in reports)} updated, "
        f"{sum(r.merged for r in reports)} merged from other feeds"
        + (f"; {len(skipped)} skipped (gone)" if skipped else "")
    )
    for r in ok:
        if r.warning:
            out.print(f"  warning  {r.feed_name}: {r.warning}")
    for r in failed:
        out.print(f"  FAILED   {r.feed_name}: {r.error}")
    for r in skipped:
        out.print(f"  SKIPPED  {r.feed_name}: {r.error}")


@main.command()
@pass_ctx
def publish(ctx: Context) -> None:
    """Rebuild every output under DATA/public from the stored entries."""
    config = ctx.config()
    store = ctx.store()
    try:
        sync_feeds(config, store)
        report = publish_all(store, config, ctx.public_dir)
    finally:
        store.close()
    out.print(f"wrote {len(report.written)} files, {report.unchanged} unchanged, in {ctx.public_dir}")


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
    config = ctx.config()
    if language != "all" and language not in config.site.languages:
        raise click.BadParameter(
            f"{language!r} is not in site.languages ({', '.join(config.site.languages)}) or 'all'",
            param_hint="--lang",
        )
    store = ctx.store()
    try:
        page = build_frontpage(store, config, language, day.date() if day else None)
    finally:
        store.close()
    if fmt == "text":
        sys.stdout.write(render.frontpage_text(page, config.site))
    elif fmt == "json":
        sys.stdout.write(render.frontpage_json(page))
    else:
        sys.stdout.write(render.frontpage_html(page, config.site))


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--feed", "feed_name", default=None, metavar="NAME", help="One feed's recent poll history.")
@pass_ctx
def status(ctx: Context, as_json: bool, feed_name: str | None) -> None:
    """A table of every feed: language, last poll, HTTP status, entries stored, last error."""
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
    outside = {k: v for k, v in languages.items() if k not in config.site.languages}
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
        }
        sys.stdout.write(json.dumps(doc, ensure_ascii=False, indent=2) + "\n")
        return
    table = Table(title=f"{len(stats)} feeds, {total} entries stored")
    for col in (
        "feed",
        "lang",
        "last poll (UTC)",
        "HTTP",
        "entries",
        "errors",
        "every",
        "next poll",
        "last error / warning",
    ):
        # Short columns never wrap; the feed name and the words of an error take what is left.
        wraps = col in ("feed", "last error / warning")
        longest_name = max((len(s.state.name) for s in stats), default=4)
        table.add_column(
            col,
            overflow="fold",
            no_wrap=not wraps,
            ratio=1 if wraps else None,
            min_width=min(longest_name, 24) if col == "feed" else None,
        )
    for s in stats:
        notes = [s.state.last_error or "", s.state.warning or ""]
        if s.state.gone:
            notes[0] = "410 Gone: no longer polled (its entries are kept); remove it from feeds.yaml"
        if s.state.permanent_url:
            notes.insert(0, f"moved permanently to {s.state.permanent_url}: update feeds.yaml")
        next_poll = _short(s.state.next_poll)
        if s.state.gone or not configured[s.state.url].enabled:
            next_poll = "never" if s.state.gone else "disabled"
        table.add_row(
            s.state.name,
            s.language,
            _short(s.state.last_polled),
            str(s.state.last_status or "—"),
            str(s.seen_in),
            str(s.state.error_count),
            intervals[s.state.url][0],
            next_poll,
            "; ".join(n for n in notes if n),
        )
    out.print(table)
    counts = ", ".join(f"{k}: {v}" for k, v in languages.items())
    out.print(f"by language: {counts or '—'}; outside site.languages: {sum(outside.values())}")


def _feed_history(ctx: Context, config: Config, store: Store, name: str, as_json: bool) -> None:
    feed = config.feed(name)
    if feed is None:
        raise click.BadParameter(f"no feed named {name!r} in {ctx.config_path}", param_hint="--feed")
    rows = store.fetch_log(feed.key)
    if as_json:
        sys.stdout.write(json.dumps({"feed": feed.key, "polls": rows}, indent=2) + "\n")
        return
    table = Table(title=f"{feed.title}: last {len(rows)} polls")
    for col in ("started (UTC)", "URL", "HTTP", "bytes", "ms", "outcome", "error"):
        table.add_column(col, overflow="fold")
    for r in rows:
        url = "" if r["url"] == feed.key else r["url"]  # only shown when it differs (redirects)
        table.add_row(r["started"], url, str(r["status"] or "—"), str(r["bytes"] or "—"),
                      f"{r['duration_ms'] or 0:.0f}", r["outcome"], r["error"] or "")  # fmt: skip
    out.print(table)


def _interval_words(config: Config, feed: FeedConfig, store: Store, now: datetime) -> tuple[str, int]:
    """The feed's poll interval before back-off, as words and seconds ("auto: 3h 30m")."""
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


def _short(value: datetime | None) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M") if value else "—"


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

    from .serve import create_app, make_server

    signal.signal(signal.SIGTERM, signal.default_int_handler)  # until the server takes it over
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(make_server(create_app(ctx.public_dir), host, port).serve())


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8080, show_default=True, type=int)
@pass_ctx
def run(ctx: Context, host: str, port: int) -> None:
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
    logging.getLogger().setLevel(logging.INFO)
    # APScheduler logs every job start and end at INFO; our own poll lines say what matters.
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    logging.getLogger("httpx").setLevel(logging.WARNING)  # a line per request says nothing more
    console.print(f"serving {ctx.public_dir} on http://{host}:{port}/ — polling {len(config.feeds)} feeds")
    try:
        # A second Ctrl-C during the shutdown abandons what is left: the files are only ever
        # renamed into place whole, and the store's transactions are atomic.
        with contextlib.suppress(KeyboardInterrupt):
            Service(config, ctx.data_dir).run(host, port)
        # Stopped and saved: a late signal must not turn the exit status into "killed" while the
        # interpreter tears down (it restores the default handlers for that).
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, signal.SIG_IGN)
    except StartupError as e:
        click.echo(f"aggregator run: {e}", err=True)  # plain: the path must not be read as markup
        sys.exit(1)


if __name__ == "__main__":
    main()
