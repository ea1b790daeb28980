"""The `cuecard` command: `serve` runs the API locally; `keys` manages API keys, locally or on AWS."""

from __future__ import annotations

import argparse
import json
import os
import sys
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Iterator

from core.auth import mint_key, parse_scopes
from core.errors import CuecardError
from core.models import Scope
from core.service import PromptService, utc_now
from infra.settings import Settings

DEFAULT_DATA_DIR = ".cuecard"
SERVED_MARKER = "served"  # in the data dir once `cuecard serve` has started on it
EXAMPLES_DIR = Path(__file__).resolve().parent.parent / "examples" / "prompts"


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except CuecardError as exc:
        print(f"cuecard: {exc.message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cuecard", description="Self-hosted prompt registry with Portkey's Prompts API.")
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="run the API locally on an embedded DynamoDB")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8787)
    serve.add_argument("--data-dir", default=os.environ.get("CUECARD_DATA_DIR", DEFAULT_DATA_DIR),
                       help="where prompts are kept between runs (default: ./.cuecard)")
    serve.add_argument("--dynamodb-port", type=int, default=0, help="port of the embedded DynamoDB (default: any free)")
    serve.add_argument("--dynamodb-host", default="127.0.0.1",
                       help="address the embedded DynamoDB listens on (0.0.0.0 lets `sam local invoke` containers in)")
    serve.add_argument("--no-examples", action="store_true", help="do not load the sample prompts on first start")
    serve.add_argument("--log-level", default="info")
    serve.set_defaults(run=_serve)

    keys = commands.add_parser("keys", help="create, list or revoke API keys")
    key_commands = keys.add_subparsers(required=True, metavar="ACTION")
    create = key_commands.add_parser("create", help="create a key and print it once")
    create.add_argument("--name", required=True)
    create.add_argument("--scopes", nargs="+", default=["render"], help="render, write, admin (comma or space separated)")
    create.set_defaults(run=_keys_create)
    listing = key_commands.add_parser("list", help="list keys (never the keys themselves)")
    listing.set_defaults(run=_keys_list)
    revoke = key_commands.add_parser("revoke", help="revoke a key by its id")
    revoke.add_argument("key_id")
    revoke.set_defaults(run=_keys_revoke)
    for sub in (create, listing, revoke):
        target = sub.add_mutually_exclusive_group()
        target.add_argument("--data-dir", help="the local data dir of `cuecard serve` (default: ./.cuecard)")
        target.add_argument("--table", help="a deployed cuecard table, reached with your AWS credentials")
        sub.add_argument("--region", help="AWS region of --table")
    return parser


# --- serve -------------------------------------------------------------------------------------


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from handlers.container import build_container
    from handlers.local_seed import load_examples
    from infra.local_data_dir import local_endpoint
    from infra.local_dynamodb import ensure_table

    _local_credentials()
    data_dir = Path(args.data_dir).resolve()
    settings = Settings.from_env()
    with local_endpoint(data_dir, host=args.dynamodb_host, port=args.dynamodb_port) as endpoint:
        created = ensure_table(endpoint, settings.table_name, settings.region)
        container = build_container(replace(settings, dynamodb_endpoint=endpoint))
        if _first_serve(data_dir, created, container.service):
            if not args.no_examples:
                loaded = load_examples(container.service, EXAMPLES_DIR, container.virtual_keys.service)
                print(f"Loaded {loaded} sample prompts from {EXAMPLES_DIR}.")
            if not settings.admin_key:
                minted = mint_key("local-admin", frozenset({Scope.ADMIN}), utc_now())
                container.store.put_key(minted.record)
                print(f"Admin API key (shown once, keep it): {minted.key}")
        elif not settings.admin_key:
            print("Using the keys in the data dir. Make another with: cuecard keys create --name NAME --scopes admin")
        if settings.admin_key:
            print("CUECARD_ADMIN_KEY is an admin key.")
        print(f"Data dir: {data_dir}")
        print(f"cuecard is serving on http://{args.host}:{args.port}/v1  (Ctrl-C stops it)", flush=True)
        uvicorn.run(container.asgi_app(), host=args.host, port=args.port, log_level=args.log_level,
                    timeout_graceful_shutdown=5)
    print("cuecard stopped.")
    return 0


def _first_serve(data_dir: Path, table_created: bool, service: PromptService) -> bool:
    """True on the first `serve` of a data dir, even if `cuecard keys` made its table before (no prompts yet).

    The marker is written before the samples load: a crash part-way never loads them twice.
    """
    marker = data_dir / SERVED_MARKER
    first = table_created or (not marker.exists() and service.list_prompts({})["total"] == 0)
    marker.touch()
    return first


# --- keys --------------------------------------------------------------------------------------


@contextmanager
def _key_store(args: argparse.Namespace) -> Iterator[object]:
    from infra.dynamodb_store import DynamoStore

    settings = Settings.from_env()
    if args.table:
        settings = replace(settings, table_name=args.table, region=args.region or settings.region)
        yield DynamoStore.from_settings(settings)
        return
    from infra.local_data_dir import local_endpoint
    from infra.local_dynamodb import ensure_table

    _local_credentials()
    data_dir = Path(args.data_dir or os.environ.get("CUECARD_DATA_DIR", DEFAULT_DATA_DIR)).resolve()
    with local_endpoint(data_dir) as endpoint:
        ensure_table(endpoint, settings.table_name, settings.region)
        yield DynamoStore.from_settings(replace(settings, dynamodb_endpoint=endpoint))


def _local_credentials() -> None:
    """The embedded store needs no AWS account; botocore still wants some credentials to sign with."""
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "cuecard-local")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "cuecard-local")


def _keys_create(args: argparse.Namespace) -> int:
    minted = mint_key(args.name, parse_scopes(args.scopes), utc_now())
    with _key_store(args) as store:
        store.put_key(minted.record)  # type: ignore[attr-defined]
    scopes = ",".join(sorted(scope.value for scope in minted.record.scopes))
    print(f"Created key {minted.record.key_id} ({args.name}; scopes: {scopes}). It is shown once:", file=sys.stderr)
    print(minted.key)
    return 0


def _keys_list(args: argparse.Namespace) -> int:
    with _key_store(args) as store:
        for record in store.list_keys():  # type: ignore[attr-defined]
            print(json.dumps({
                "key_id": record.key_id, "name": record.name, "prefix": record.prefix,
                "scopes": sorted(scope.value for scope in record.scopes), "created_at": record.created_at,
                "revoked": record.revoked,
            }))
    return 0


def _keys_revoke(args: argparse.Namespace) -> int:
    with _key_store(args) as store:
        store.revoke_key(args.key_id)  # type: ignore[attr-defined]
    print(f"Revoked {args.key_id}.", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
