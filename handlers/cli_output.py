"""How `cuecard pull` and `push` show their work: rich's progress bars (stderr) and tables (stdout) for people,
one JSON object for scripts (`--json`)."""

from __future__ import annotations

import json
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Iterator, Sequence

if TYPE_CHECKING:
    from handlers.prompt_sync import Change, Pulled, Step

STATUS_STYLES = {"new": "green", "changed": "yellow", "unchanged": "dim"}


@contextmanager
def progress(description: str, total: int | None = None) -> Iterator[Step]:
    """A progress bar on stderr while the block runs; the returned step advances it by one item."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    columns = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()]
    with Progress(*columns, console=Console(stderr=True)) as bar:
        task = bar.add_task(description, total=total)

        def step(_item: str) -> None:
            bar.advance(task)

        yield step
        if total is None:
            bar.update(task, total=bar.tasks[0].completed)


def _print_table(title: str, headers: tuple[str, ...], rows: Sequence[Sequence[str]]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title, title_justify="left", show_edge=False, pad_edge=False)
    for header in headers:
        table.add_column(header, overflow="fold")
    for row in rows:
        table.add_row(*row)
    Console(soft_wrap=False, highlight=False).print(table)


def _version_cell(change: Change) -> str:
    if change.status == "new":
        return f"new -> {change.version}" if change.version else "new"
    before = change.remote.latest_version if change.remote else None
    if change.new_version:
        return f"{before} -> {change.version}" if change.version else f"{before} -> {(before or 0) + 1}"
    return str(before)


def _what(change: Change) -> str:
    parts = []
    if change.status == "new":
        parts.append(f"create {change.kind}")
    elif change.new_version:
        parts.append("new version")
    parts.extend(f"{field} changes" for field in change.head)
    return ", ".join(parts) or "-"


def show_plan(changes: list[Change], *, applied: bool, with_diffs: bool) -> None:
    """The plan (or what was done) as a table, each warning below it, then the diff of each changed file."""
    from rich.console import Console
    from rich.markup import escape

    rows = [(f"[{STATUS_STYLES[change.status]}]{change.status}[/]", change.kind, escape(change.file.path),
             _version_cell(change), _what(change)) for change in changes]
    _print_table("Pushed" if applied else "Plan", ("status", "kind", "file", "version", "what"), rows)
    console = Console(highlight=False, soft_wrap=True)
    for change in changes:
        for warning in change.warnings:
            console.print(f"[bold red]warning[/]: {escape(change.file.path)}: {escape(warning)}")
    if with_diffs:
        for change in changes:
            if change.diff:
                print(change.diff, end="")
    counts = {status: sum(change.status == status for change in changes) for status in STATUS_STYLES}
    console.print(", ".join(f"{count} {status}" for status, count in counts.items()))


def plan_json(changes: list[Change], *, applied: bool) -> str:
    """The plan (or what was done) for scripts: one JSON object."""
    files: list[dict[str, Any]] = []
    for change in changes:
        files.append({
            "path": change.file.path,
            "kind": change.kind,
            "slug": change.file.document.slug,
            "status": change.status,
            "new_version": change.new_version,
            "head_changes": sorted(change.head),
            "from_version": change.remote.latest_version if change.remote else None,
            "version": change.version,
            "content_hash": change.file.document.content_hash,
            "warnings": change.warnings,
            "diff": change.diff,
        })
    summary = {status: sum(change.status == status for change in changes) for status in STATUS_STYLES}
    return json.dumps({"applied": applied, "summary": summary, "files": files}, indent=2, ensure_ascii=False)


def show_pulled(pulled: list[Pulled], directory: str) -> None:
    rows = [("written" if item.written else "[dim]unchanged[/]", item.kind, item.path, str(item.version))
            for item in pulled]
    _print_table(f"Pulled into {directory}", ("status", "kind", "file", "version"), rows)


def pulled_json(pulled: list[Pulled], directory: str) -> str:
    return json.dumps({"directory": directory, "files": [
        {"path": item.path, "kind": item.kind, "slug": item.slug, "version": item.version, "written": item.written}
        for item in pulled]}, indent=2, ensure_ascii=False)
