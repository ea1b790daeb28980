"""The `cuecard` command: `serve` runs the API locally; `keys` manages API keys; `table create` readies a
DynamoDB table (DynamoDB Local for `sam local`, or a real one) with the sample prompts."""

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
from core.service import utc_now
from infra.settings import Settings
from infra.stores import Stores

DEFAULT_DATA_DIR = ".cuecard"


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    from handlers.local_store import LocalStoreError

    try:
        return int(args.run(args))
    except (CuecardError, LocalStoreError) as exc:
        print(f"cuecard: {getattr(exc, 'message', exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cuecard", description="Self-hosted prompt registry with Portkey's Prompts API.")
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="run the API locally (SQLite in --data-dir, or a DynamoDB table)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8787)
    _add_store_arguments(serve)
    serve.add_argument("--no-examples", action="store_true", help="do not load the sample prompts on first start")
    serve.add_argument("--log-level", default="info")
    serve.set_defaults(run=_serve)

    keys = commands.add_parser("keys", help="create, list or revoke API keys")
    key_commands = keys.add_subparsers(required=True, metavar="ACTION")
    create = key_commands.add_parser("create", help="create a key and print it once")
    create.add_argument("--name", required=True)
    create.add_argument("--scopes", nargs="+", default=["render"],
                        help="render, complete (render + completions), write (render + prompts, partials, labels), "
                             "admin (everything); comma or space separated")
    create.set_defaults(run=_keys_create)
    listing = key_commands.add_parser("list", help="list keys (never the keys themselves)")
    listing.set_defaults(run=_keys_list)
    revoke = key_commands.add_parser("revoke", help="revoke a key by its id")
    revoke.add_argument("key_id")
    revoke.set_defaults(run=_keys_revoke)
    for sub in (create, listing, revoke):
        _add_store_arguments(sub)

    table = commands.add_parser("table", help="a DynamoDB table for cuecard (DynamoDB Local or AWS)")
    table_commands = table.add_subparsers(required=True, metavar="ACTION")
    table_create = table_commands.add_parser(
        "create", help="create the table as template.yaml defines it, load the sample prompts, print an admin key")
    table_create.add_argument("--table", required=True)
    table_create.add_argument("--region")
    table_create.add_argument("--dynamodb-endpoint", help="e.g. http://127.0.0.1:8000 for DynamoDB Local")
    table_create.add_argument("--no-examples", action="store_true", help="do not load the sample prompts")
    table_create.set_defaults(run=_table_create, store="dynamodb")
    return parser


def _add_store_arguments(sub: argparse.ArgumentParser) -> None:
    sub.add_argument("--store", choices=("sqlite", "dynamodb"), default=None,
                     help="sqlite (default; a file in --data-dir) or dynamodb (--table)")
    sub.add_argument("--data-dir", help="the local store's folder (default: $CUECARD_DATA_DIR or ./.cuecard)")
    sub.add_argument("--table", help="a DynamoDB table (implies --store dynamodb)")
    sub.add_argument("--region", help="AWS region of --table")
    sub.add_argument("--dynamodb-endpoint", help="a DynamoDB-compatible endpoint such as DynamoDB Local")


def _settings(args: argparse.Namespace) -> Settings:
    """The environment's settings, with this command's store options on top."""
    settings = Settings.from_env()
    chosen_by_env = settings.store if os.environ.get("CUECARD_STORE") else "sqlite"  # the CLI's default is local
    store = args.store or ("dynamodb" if args.table or args.dynamodb_endpoint else chosen_by_env)
    if store == "sqlite" and (args.table or args.dynamodb_endpoint):
        raise CuecardError("--table and --dynamodb-endpoint go with --store dynamodb.")
    if store == "dynamodb" and not (args.table or os.environ.get("CUECARD_TABLE")):
        raise CuecardError("--store dynamodb needs --table NAME (or CUECARD_TABLE).")
    return replace(
        settings,
        store=store,
        data_dir=getattr(args, "data_dir", None) or os.environ.get("CUECARD_DATA_DIR") or DEFAULT_DATA_DIR,
        table_name=args.table or settings.table_name,
        region=args.region or settings.region,
        dynamodb_endpoint=args.dynamodb_endpoint or settings.dynamodb_endpoint,
    )


@contextmanager
def _stores(settings: Settings) -> Iterator[Stores]:
    from handlers.container import open_stores
    from handlers.local_store import open_data_dir

    if settings.store == "sqlite":
        stores = open_data_dir(Path(settings.data_dir).resolve(), settings)
    else:
        if settings.dynamodb_endpoint:
            _local_credentials()
        stores = open_stores(settings)
    try:
        yield stores
    finally:
        stores.close()


def _local_credentials() -> None:
    """DynamoDB Local needs no AWS account; botocore still wants some credentials to sign with."""
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "cuecard-local")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "cuecard-local")


# --- serve -------------------------------------------------------------------------------------


def _serve(args: argparse.Namespace) -> int:
    try:
        import uvicorn
    except ImportError:
        raise CuecardError("`cuecard serve` needs uvicorn: pip install uvicorn") from None
    from handlers.asgi_edge import json_errors_http_protocol
    from handlers.container import build_container
    from handlers.local_store import first_serve

    settings = _settings(args)
    with _stores(settings) as stores:
        container = build_container(settings, stores)
        if settings.store == "sqlite":
            data_dir = Path(settings.data_dir).resolve()
            first_serve(data_dir, container, load_samples=not args.no_examples)
            print(f"Data dir: {data_dir}")
        else:
            where = settings.dynamodb_endpoint or f"AWS {settings.region}"
            print(f"Store: DynamoDB table {settings.table_name} ({where})")
        if settings.admin_key:
            print("CUECARD_ADMIN_KEY is an admin key.")
        print(f"API docs: http://{args.host}:{args.port}/docs  (OpenAPI: /openapi.json)")
        print(f"cuecard is serving on http://{args.host}:{args.port}/v1  (Ctrl-C stops it)", flush=True)
        uvicorn.run(container.asgi_app(inline_renders=False), host=args.host, port=args.port, log_level=args.log_level,
                    timeout_graceful_shutdown=5, http=json_errors_http_protocol())
    print("cuecard stopped.")
    return 0


# --- table ---------------------------------------------------------------------------------------


def _table_create(args: argparse.Namespace) -> int:
    from handlers.container import build_container
    from handlers.local_seed import load_examples
    from handlers.local_store import EXAMPLES_DIR
    from infra.table_definition import ensure_table

    settings = _settings(args)
    if settings.dynamodb_endpoint:
        _local_credentials()
    created = ensure_table(settings)
    print(f"Table {settings.table_name} {'created' if created else 'already exists'}.", file=sys.stderr)
    if not created:
        return 0
    with _stores(settings) as stores:
        container = build_container(settings, stores)
        if not args.no_examples:
            loaded = load_examples(container.service, EXAMPLES_DIR, container.virtual_keys.service)
            print(f"Loaded {loaded} sample prompts.", file=sys.stderr)
        minted = mint_key("admin", parse_scopes(["admin"]), utc_now())
        stores.api_keys.put_key(minted.record)
    print("Admin API key (shown once, keep it):", file=sys.stderr)
    print(minted.key)
    return 0


# --- keys --------------------------------------------------------------------------------------


def _keys_create(args: argparse.Namespace) -> int:
    minted = mint_key(args.name, parse_scopes(args.scopes), utc_now())
    with _stores(_settings(args)) as stores:
        stores.api_keys.put_key(minted.record)
    scopes = ",".join(sorted(scope.value for scope in minted.record.scopes))
    print(f"Created key {minted.record.key_id} ({args.name}; scopes: {scopes}). It is shown once:", file=sys.stderr)
    print(minted.key)
    return 0


def _keys_list(args: argparse.Namespace) -> int:
    with _stores(_settings(args)) as stores:
        for record in stores.api_keys.list_keys():
            print(json.dumps({
                "key_id": record.key_id, "name": record.name, "prefix": record.prefix,
                "scopes": sorted(scope.value for scope in record.scopes), "created_at": record.created_at,
                "revoked": record.revoked,
            }))
    return 0


def _keys_revoke(args: argparse.Namespace) -> int:
    settings = _settings(args)
    with _stores(settings) as stores:
        stores.api_keys.revoke_key(args.key_id)
    print(f"Revoked {args.key_id}. A running server stops accepting it within {settings.auth_cache_ttl:g} s "
          "(CUECARD_AUTH_CACHE_TTL).", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
