"""The `cuecard` command: `serve` runs the API locally; `keys` manages API keys; `table create` readies a
DynamoDB table (DynamoDB Local for `sam local`, or a real one) with the sample prompts; `diff` and `render`
call a running server over HTTP (`--url`, `--api-key` or CUECARD_URL, CUECARD_API_KEY)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any, Iterator

from core.auth import mint_key, parse_scopes
from core.diffs import unified_text_diff
from core.errors import CuecardError
from core.references import Reference, parse_reference
from core.service import utc_now
from infra.settings import Settings
from infra.stores import Stores

DEFAULT_DATA_DIR = ".cuecard"
DEFAULT_URL = "http://127.0.0.1:8787/v1"
EXIT_CODES = """exit codes:
  0    done (for diff: also when the two versions differ)
  2    bad usage, an unreachable server, or the API refused the call; one line on stderr,
       "cuecard: <the API's error message>"
  130  interrupted"""


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

    diff = commands.add_parser(
        "diff", help="diff two versions of a prompt on a running server",
        description="Prints the unified diff of the two templates, then the changes of model, parameters, tools, "
                    "tool_choice, functions, template_metadata, is_raw_template, virtual_key and variables. "
                    "REF is id@<version>, id@latest, id@<label> or id (the published version); both name the "
                    "same prompt.",
        epilog=EXIT_CODES, formatter_class=argparse.RawDescriptionHelpFormatter)
    diff.add_argument("ref_a", metavar="REF_A")
    diff.add_argument("ref_b", metavar="REF_B")
    diff.add_argument("--variables", metavar="FILE",
                      help="a JSON object of variables: also render both versions with them and diff the bodies")
    diff.add_argument("--json", action="store_true", help="print the API's diff as JSON (with `rendered_diff`)")
    diff.set_defaults(run=_diff)

    render = commands.add_parser(
        "render", help="print the request body a prompt renders to, from a running server",
        description="Renders REF (id@<version>, id@latest, id@<label> or id) with the variables given and prints "
                    "the request body as indented JSON.",
        epilog=EXIT_CODES, formatter_class=argparse.RawDescriptionHelpFormatter)
    render.add_argument("ref", metavar="REF")
    render.add_argument("--var", action="append", default=[], metavar="K=V",
                        help="a variable (a string); repeat it; wins over --variables")
    render.add_argument("--variables", metavar="FILE", help="a JSON object of variables")
    render.add_argument("--json", action="store_true",
                        help="print one JSON object: prompt_id, slug, version and the rendered body")
    render.set_defaults(run=_render)
    for sub in (diff, render):
        sub.add_argument("--url", help=f"the API's base URL (default: $CUECARD_URL or {DEFAULT_URL})")
        sub.add_argument("--api-key", help="an API key (default: $CUECARD_API_KEY); diff needs the write scope")

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


# --- diff and render (HTTP clients) ---------------------------------------------------------------


class _Api:
    """A running server's API: each call answers JSON, or raises CuecardError with the API's error message."""

    def __init__(self, args: argparse.Namespace) -> None:
        import httpx

        self.url = (args.url or os.environ.get("CUECARD_URL") or DEFAULT_URL).rstrip("/")
        key = args.api_key or os.environ.get("CUECARD_API_KEY")
        if not key:
            raise CuecardError("no API key: pass --api-key or set CUECARD_API_KEY.")
        self._client = httpx.Client(base_url=self.url, headers={"x-portkey-api-key": key}, timeout=30.0)

    def call(self, method: str, path: str, *, params: dict[str, str] | None = None,
             body: Any = None) -> tuple[Any, dict[str, str]]:
        import httpx

        try:
            response = self._client.request(method, path, params=params, json=body)
        except httpx.HTTPError as exc:
            raise CuecardError(f"cannot reach {self.url}: {exc}") from None
        try:
            answer = response.json()
        except ValueError:
            answer = None
        if response.status_code >= 400:
            error = answer.get("error") if isinstance(answer, dict) else None
            message = error.get("message") if isinstance(error, dict) else None
            raise CuecardError(str(message) if message else f"HTTP {response.status_code} from {self.url}{path}")
        return answer, dict(response.headers)


def _quoted(text: str) -> str:
    from urllib.parse import quote

    return quote(text, safe="@")


def _variables(path: str | None, pairs: list[str] | None = None) -> dict[str, Any]:
    variables: dict[str, Any] = {}
    if path:
        try:
            loaded = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise CuecardError(f"cannot read --variables {path}: {exc}") from None
        if not isinstance(loaded, dict):
            raise CuecardError(f"--variables {path} must hold a JSON object.")
        variables.update(loaded)
    for pair in pairs or ():
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise CuecardError(f"--var takes NAME=VALUE; got {pair!r}.")
        variables[name] = value
    return variables


def _rendered(api: _Api, ref: str, variables: dict[str, Any]) -> tuple[Any, dict[str, str]]:
    answer, headers = api.call("POST", f"/prompts/{_quoted(ref)}/render", body={"variables": variables})
    return (answer.get("data") if isinstance(answer, dict) else answer), headers


def _pretty(value: Any, *, sort_keys: bool = False) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=sort_keys) + "\n"


def _selector(api: _Api, ref: Reference) -> str:
    """The diff route's `from`/`to` for a reference; a bare id is its published version's number."""
    if ref.selector == "number":
        return str(ref.number)
    if ref.selector == "label":
        return str(ref.label)
    if ref.selector == "latest":
        return "latest"
    prompt, _ = api.call("GET", f"/prompts/{_quoted(ref.key)}")
    return str(prompt["prompt_version"])


def _diff(args: argparse.Namespace) -> int:
    ref_a, ref_b = parse_reference(args.ref_a, param="REF_A"), parse_reference(args.ref_b, param="REF_B")
    if ref_a.key != ref_b.key:
        raise CuecardError(f"REF_A and REF_B must name the same prompt; got {ref_a.key!r} and {ref_b.key!r}.")
    variables = _variables(args.variables) if args.variables else None
    api = _Api(args)
    params = {"from": _selector(api, ref_a), "to": _selector(api, ref_b)}
    diff, _ = api.call("GET", f"/prompts/{_quoted(ref_a.key)}/diff", params=params)
    if variables is not None:
        bodies = [_pretty(_rendered(api, str(ref), variables)[0], sort_keys=True) for ref in (ref_a, ref_b)]
        diff["rendered_diff"] = unified_text_diff(*bodies, old_name=f"{args.ref_a} (rendered)",
                                                  new_name=f"{args.ref_b} (rendered)")
    if args.json:
        print(json.dumps(diff, indent=2, ensure_ascii=False))
        return 0
    print(_diff_text(diff), end="")
    return 0


def _diff_text(diff: dict[str, Any]) -> str:
    """The diff for people: the template diff, then one line a changed field, then the rendered diff."""
    old, new = diff["from"], diff["to"]
    lines = [diff["template_diff"].rstrip("\n") or "Templates: no difference."]
    lines.append(f"Changes from {old['ref']} (version {old['version']}) to {new['ref']} (version {new['version']}):")
    changes = [f"  {name}: {json.dumps(change['from'], sort_keys=True)} -> {json.dumps(change['to'], sort_keys=True)}"
               for name, change in diff["changed"].items() if name != "variables"]
    if diff["added_variables"]:
        changes.append(f"  variables added: {', '.join(diff['added_variables'])}")
    if diff["removed_variables"]:
        changes.append(f"  variables removed: {', '.join(diff['removed_variables'])}")
    if "variables" in diff["changed"] and not (diff["added_variables"] or diff["removed_variables"]):
        changes.append("  variables: reordered")
    lines.extend(changes or ["  none"])
    if "rendered_diff" in diff:
        lines.append(diff["rendered_diff"].rstrip("\n") or "Rendered bodies: no difference.")
    return "\n".join(lines) + "\n"


def _render(args: argparse.Namespace) -> int:
    parse_reference(args.ref, param="REF")
    variables = _variables(args.variables, args.var)
    body, headers = _rendered(_Api(args), args.ref, variables)
    if args.json:
        version = headers.get("x-cuecard-prompt-version")
        print(json.dumps({"prompt_id": headers.get("x-cuecard-prompt-id"), "slug": headers.get("x-cuecard-prompt-slug"),
                          "version": int(version) if version and version.isdigit() else version, "body": body},
                         ensure_ascii=False))
        return 0
    print(_pretty(body), end="")
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
