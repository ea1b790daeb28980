"""The local data dir: its SQLite store, the one-time import of an older journal-format data dir, and
what the first `cuecard serve` on it does (sample prompts, an admin key)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from core.auth import mint_key
from core.models import Scope
from core.service import utc_now
from handlers.container import Container
from infra.settings import Settings
from infra.sqlite import DATABASE_NAME, Database, stores_on
from infra.stores import Stores

SERVED_MARKER = "served"  # in the data dir once `cuecard serve` has started on it


def _examples_dir() -> Path:
    """examples/prompts of this checkout, else the copy a wheel installs (package `cuecard_examples`)."""
    checkout = Path(__file__).resolve().parent.parent / "examples" / "prompts"
    if checkout.is_dir():
        return checkout
    import cuecard_examples

    return Path(next(iter(cuecard_examples.__path__))) / "prompts"


EXAMPLES_DIR = _examples_dir()


class LocalStoreError(Exception):
    """The data dir cannot be opened as it is; the message says what to do (one line, no traceback)."""


def open_data_dir(data_dir: Path, settings: Settings) -> Stores:
    """The SQLite store in `data_dir` (created 0700/0600), with an older journal imported once."""
    db = Database(data_dir / DATABASE_NAME)
    try:
        db.check()
        _import_journal_once(data_dir, db)
    except BaseException:
        db.close()
        raise
    return stores_on(db, secret_prefix=settings.secret_prefix, job_ttl_seconds=settings.job_idempotency_ttl)


def _import_journal_once(data_dir: Path, db: Database) -> None:
    from infra import journal_import
    from infra.sqlite.imports import import_snapshot, imported_from

    if not journal_import.has_journal(data_dir):
        return
    journal = data_dir / journal_import.JOURNAL_NAME
    if imported_from(db, journal.name) is not None:
        return
    print(f"Importing {journal} (the data format of earlier cuecard versions) into {DATABASE_NAME}...", flush=True)
    try:
        result = journal_import.read_journal(data_dir)
    except (journal_import.JournalDamaged, journal_import.MigrationNeedsMoto) as exc:
        raise LocalStoreError(str(exc)) from None
    for warning in result.warnings:
        print(f"  note: {warning}", file=sys.stderr)
    counts = import_snapshot(db, result.snapshot, source=journal.name, imported_at=utc_now())
    print(journal_import.summary(counts, journal), flush=True)
    print(f"  {journal.name} is kept as it was; remove it once you no longer need it.", flush=True)


def first_serve(data_dir: Path, container: Container, *, load_samples: bool) -> None:
    """On the first `serve` of a data dir: the sample prompts, and an admin key unless CUECARD_ADMIN_KEY is set.

    The marker is written before the samples load: a crash part-way never loads them twice.
    """
    from handlers.local_seed import load_examples

    marker = data_dir / SERVED_MARKER
    first = not marker.exists() and not container.service.list_prompts({})["total"]
    marker.touch(mode=0o600)
    os.chmod(marker, 0o600)  # cuecard 0.1 made it 0644
    if not first:
        if not container.settings.admin_key:
            print("Using the keys in the data dir. Make another with: cuecard keys create --name NAME --scopes admin")
        return
    if load_samples:
        loaded = load_examples(container.service, EXAMPLES_DIR, container.virtual_keys.service)
        print(f"Loaded {loaded} sample prompts from {EXAMPLES_DIR}.")
    if not container.settings.admin_key:
        minted = mint_key("local-admin", frozenset({Scope.ADMIN}), utc_now())
        container.stores.api_keys.put_key(minted.record)
        print(f"Admin API key (shown once, keep it): {minted.key}")
