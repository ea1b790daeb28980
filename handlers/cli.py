"""The `cuecard` command, built with click: `serve` runs the API locally; `keys` manages API keys; `table create`
readies a DynamoDB table (DynamoDB Local for `sam local`, or a real one) with the sample prompts; `diff` and
`render` call a running server over HTTP (`--url`, `--api-key` or CUECARD_URL, CUECARD_API_KEY).

`main` runs it and returns the exit code (EXIT_CODES) without exiting. A command on a store takes `@store_options`;
one that calls a running server takes `@client_options` and goes in the client commands' section at the end.
Heavy imports (uvicorn, the stores, httpx) happen inside the commands: `serve` on SQLite loads no AWS library.
"""

from __future__ import annotations

import functools
import json
import os
import sys
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Iterator, TypeVar, cast

import click

from core.auth import mint_key, parse_scopes
from core.diffs import unified_text_diff
from core.errors import CuecardError
from core.references import Reference, parse_reference
from core.service import utc_now
from handlers.api_client import DEFAULT_URL, ApiClient, quoted
from infra.settings import Settings
from infra.stores import Stores

DEFAULT_DATA_DIR = ".cuecard"
EXIT_CODES = """exit codes:
  0    done (for diff: also when the two versions differ)
  1    push --check: the registry differs from the files (the diff is printed)
  2    bad usage, an unreachable server, or the API refused the call; one line on stderr,
       "cuecard: <the API's error message>"
  130  interrupted"""
_AS_WRITTEN = "\b\n"  # click rewraps help text; a paragraph starting with this line is printed as written

CommandFunction = TypeVar("CommandFunction", bound=Callable[..., Any])


def main(argv: list[str] | None = None) -> int:
    """Runs `cuecard ARGV...` (default: sys.argv[1:]) and returns its exit code; errors are printed, no traceback."""
    from handlers.local_store import LocalStoreError

    try:
        code = cuecard.main(args=argv, prog_name="cuecard", standalone_mode=False)
    except click.ClickException as exc:  # bad usage: click's usage line and message, exit code 2
        exc.show()
        return exc.exit_code
    except (CuecardError, LocalStoreError) as exc:
        print(f"cuecard: {getattr(exc, 'message', exc)}", file=sys.stderr)
        return 2
    except (click.Abort, KeyboardInterrupt):  # click turns Ctrl-C into Abort
        return 130
    return code if isinstance(code, int) else 0


# --- the command group and the shared options --------------------------------------------------------


class _WordsOption(click.Option):
    """A `multiple=True` option that also takes several words after one flag, like argparse's nargs="+":
    `--scopes render write` reads as `--scopes render --scopes write` (done by `_Command.parse_args`)."""


class _Command(click.Command):
    """A command whose `_WordsOption`s take one or more words each time they are given."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        flags = {flag for param in self.params if isinstance(param, _WordsOption) for flag in param.opts}
        return super().parse_args(ctx, _one_word_per_flag(args, flags) if flags else args)


class _Group(click.Group):
    """Lists its commands in the order they are defined; its commands and groups are `_Command`s and `_Group`s."""

    command_class = _Command
    group_class = type  # subgroups are _Groups too

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(self.commands)


def _one_word_per_flag(args: list[str], flags: set[str]) -> list[str]:
    """`--scopes a b` (or `--scopes=a b`) as `--scopes a --scopes b`, up to the next option or `--`."""
    out: list[str] = []
    flag, has_word = None, False  # the words option being read, and whether it has its first word
    for index, arg in enumerate(args):
        if arg == "--":
            return out + args[index:]
        if flag and not arg.startswith("-"):
            out += [flag, arg] if has_word else [arg]
            has_word = True
            continue
        name, equals, _ = arg.partition("=")
        flag, has_word = (name, bool(equals)) if name in flags else (None, False)
        out.append(arg)
    return out


def _options(*decorators: Callable[[Any], Any]) -> Callable[[CommandFunction], CommandFunction]:
    """Applies several click options at once; --help lists them in the order given."""

    def apply(command: CommandFunction) -> CommandFunction:
        for decorator in reversed(decorators):
            command = decorator(command)
        return command

    return apply


@dataclass(frozen=True)
class StoreOptions:
    """Where a command's store is: --store (`kind`), --data-dir, --table, --region, --dynamodb-endpoint."""

    kind: str | None = None  # None: chosen by `_settings`
    data_dir: str | None = None
    table: str | None = None
    region: str | None = None
    dynamodb_endpoint: str | None = None


def store_options(command: CommandFunction) -> CommandFunction:
    """Adds --store, --data-dir, --table, --region and --dynamodb-endpoint; the command gets `store: StoreOptions`
    (`_settings(store)` reads them with the environment, `_stores(settings)` opens the stores)."""

    @functools.wraps(command)
    def with_store(*args: Any, store_kind: str | None, data_dir: str | None, table: str | None, region: str | None,
                   dynamodb_endpoint: str | None, **kwargs: Any) -> Any:
        return command(*args, store=StoreOptions(store_kind, data_dir, table, region, dynamodb_endpoint), **kwargs)

    return cast(CommandFunction, _options(
        click.option("--store", "store_kind", type=click.Choice(["sqlite", "dynamodb"]), default=None,
                     help="sqlite (default; a file in --data-dir) or dynamodb (--table)"),
        click.option("--data-dir", help="the local store's folder (default: $CUECARD_DATA_DIR or ./.cuecard)"),
        click.option("--table", help="a DynamoDB table (implies --store dynamodb)"),
        click.option("--region", help="AWS region of --table"),
        click.option("--dynamodb-endpoint", help="a DynamoDB-compatible endpoint such as DynamoDB Local"),
    )(with_store))


@dataclass(frozen=True)
class ClientOptions:
    """--url and --api-key: the running server a client command calls."""

    url: str | None = None  # None: $CUECARD_URL or DEFAULT_URL
    api_key: str | None = None  # None: $CUECARD_API_KEY

    def client(self) -> ApiClient:
        """The server's API; raises CuecardError ("no API key: ...") when neither the option nor the variable is set."""
        return ApiClient(self.url, self.api_key)


def client_options(command: CommandFunction) -> CommandFunction:
    """Adds --url and --api-key; the command gets `server: ClientOptions` and calls `server.client()`."""

    @functools.wraps(command)
    def with_server(*args: Any, url: str | None, api_key: str | None, **kwargs: Any) -> Any:
        return command(*args, server=ClientOptions(url, api_key), **kwargs)

    return cast(CommandFunction, _options(
        click.option("--url", help=f"the API's base URL (default: $CUECARD_URL or {DEFAULT_URL})"),
        click.option("--api-key", help="an API key (default: $CUECARD_API_KEY); diff, pull and push need the write "
                                       "scope"),
    )(with_server))


@click.group("cuecard", cls=_Group, help="Self-hosted prompt registry with Portkey's Prompts API.",
             epilog=_AS_WRITTEN + EXIT_CODES, subcommand_metavar="COMMAND [ARGS]...",
             context_settings={"help_option_names": ["-h", "--help"]})
def cuecard() -> None:
    pass


def _settings(store: StoreOptions) -> Settings:
    """The environment's settings, with this command's store options on top."""
    settings = Settings.from_env()
    chosen_by_env = settings.store if os.environ.get("CUECARD_STORE") else "sqlite"  # the CLI's default is local
    kind = store.kind or ("dynamodb" if store.table or store.dynamodb_endpoint else chosen_by_env)
    if kind == "sqlite" and (store.table or store.dynamodb_endpoint):
        raise CuecardError("--table and --dynamodb-endpoint go with --store dynamodb.")
    if kind == "dynamodb" and not (store.table or os.environ.get("CUECARD_TABLE")):
        raise CuecardError("--store dynamodb needs --table NAME (or CUECARD_TABLE).")
    return replace(
        settings,
        store=kind,
        data_dir=store.data_dir or os.environ.get("CUECARD_DATA_DIR") or DEFAULT_DATA_DIR,
        table_name=store.table or settings.table_name,
        region=store.region or settings.region,
        dynamodb_endpoint=store.dynamodb_endpoint or settings.dynamodb_endpoint,
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


SERVE_HELP = "run the API locally (SQLite in --data-dir, or a DynamoDB table)"


@cuecard.command("serve", help=SERVE_HELP, short_help=SERVE_HELP)
@click.option("--host", default="127.0.0.1")
@click.option("--port", type=int, default=8787)
@store_options
@click.option("--no-examples", is_flag=True, help="do not load the sample prompts on first start")
@click.option("--log-level", default="info")
def serve(host: str, port: int, store: StoreOptions, no_examples: bool, log_level: str) -> int:
    try:
        import uvicorn
    except ImportError:
        raise CuecardError("`cuecard serve` needs uvicorn: pip install uvicorn") from None
    from handlers.asgi_edge import json_errors_http_protocol
    from handlers.container import build_container
    from handlers.local_store import first_serve

    settings = _settings(store)
    with _stores(settings) as stores:
        container = build_container(settings, stores)
        if settings.store == "sqlite":
            data_dir = Path(settings.data_dir).resolve()
            first_serve(data_dir, container, load_samples=not no_examples)
            print(f"Data dir: {data_dir}")
        else:
            where = settings.dynamodb_endpoint or f"AWS {settings.region}"
            print(f"Store: DynamoDB table {settings.table_name} ({where})")
        if settings.admin_key:
            print("CUECARD_ADMIN_KEY is an admin key.")
        print(f"API docs: http://{host}:{port}/docs  (OpenAPI: /openapi.json)")
        print(f"cuecard is serving on http://{host}:{port}/v1  (Ctrl-C stops it)", flush=True)
        uvicorn.run(container.asgi_app(inline_renders=False), host=host, port=port, log_level=log_level,
                    timeout_graceful_shutdown=5, http=json_errors_http_protocol())
    print("cuecard stopped.")
    return 0


# --- keys --------------------------------------------------------------------------------------


KEYS_HELP = "create, list or revoke API keys"


@cuecard.group("keys", help=KEYS_HELP, short_help=KEYS_HELP, subcommand_metavar="ACTION [ARGS]...")
def keys() -> None:
    pass


@keys.command("create", help="create a key and print it once", short_help="create a key and print it once")
@click.option("--name", required=True)
@click.option("--scopes", cls=_WordsOption, multiple=True, default=["render"], metavar="SCOPE...",
              help="render, complete (render + completions), write (render + prompts, partials, labels), "
                   "admin (everything); comma or space separated")
@store_options
def keys_create(name: str, scopes: tuple[str, ...], store: StoreOptions) -> int:
    minted = mint_key(name, parse_scopes(scopes), utc_now())
    with _stores(_settings(store)) as stores:
        stores.api_keys.put_key(minted.record)
    granted = ",".join(sorted(scope.value for scope in minted.record.scopes))
    print(f"Created key {minted.record.key_id} ({name}; scopes: {granted}). It is shown once:", file=sys.stderr)
    print(minted.key)
    return 0


KEYS_LIST_HELP = "list keys (never the keys themselves)"


@keys.command("list", help=KEYS_LIST_HELP, short_help=KEYS_LIST_HELP)
@store_options
def keys_list(store: StoreOptions) -> int:
    with _stores(_settings(store)) as stores:
        for record in stores.api_keys.list_keys():
            print(json.dumps({
                "key_id": record.key_id, "name": record.name, "prefix": record.prefix,
                "scopes": sorted(scope.value for scope in record.scopes), "created_at": record.created_at,
                "revoked": record.revoked,
            }))
    return 0


@keys.command("revoke", help="revoke a key by its id", short_help="revoke a key by its id")
@click.argument("key_id", metavar="KEY_ID")
@store_options
def keys_revoke(key_id: str, store: StoreOptions) -> int:
    settings = _settings(store)
    with _stores(settings) as stores:
        stores.api_keys.revoke_key(key_id)
    print(f"Revoked {key_id}. A running server stops accepting it within {settings.auth_cache_ttl:g} s "
          "(CUECARD_AUTH_CACHE_TTL).", file=sys.stderr)
    return 0


# --- table ---------------------------------------------------------------------------------------


TABLE_HELP = "a DynamoDB table for cuecard (DynamoDB Local or AWS)"
TABLE_CREATE_HELP = "create the table as template.yaml defines it, load the sample prompts, print an admin key"


@cuecard.group("table", help=TABLE_HELP, short_help=TABLE_HELP, subcommand_metavar="ACTION [ARGS]...")
def table() -> None:
    pass


@table.command("create", help=TABLE_CREATE_HELP, short_help=TABLE_CREATE_HELP)
@click.option("--table", "table_name", required=True)
@click.option("--region")
@click.option("--dynamodb-endpoint", help="e.g. http://127.0.0.1:8000 for DynamoDB Local")
@click.option("--no-examples", is_flag=True, help="do not load the sample prompts")
def table_create(table_name: str, region: str | None, dynamodb_endpoint: str | None, no_examples: bool) -> int:
    from handlers.container import build_container
    from handlers.local_seed import load_examples
    from handlers.local_store import EXAMPLES_DIR
    from infra.table_definition import ensure_table

    settings = _settings(StoreOptions("dynamodb", table=table_name, region=region, dynamodb_endpoint=dynamodb_endpoint))
    if settings.dynamodb_endpoint:
        _local_credentials()
    created = ensure_table(settings)
    print(f"Table {settings.table_name} {'created' if created else 'already exists'}.", file=sys.stderr)
    if not created:
        return 0
    with _stores(settings) as stores:
        container = build_container(settings, stores)
        if not no_examples:
            loaded = load_examples(container.service, EXAMPLES_DIR, container.virtual_keys.service)
            print(f"Loaded {loaded} sample prompts.", file=sys.stderr)
        minted = mint_key("admin", parse_scopes(["admin"]), utc_now())
        stores.api_keys.put_key(minted.record)
    print("Admin API key (shown once, keep it):", file=sys.stderr)
    print(minted.key)
    return 0


# --- client commands: call a running server over HTTP ------------------------------------------------
# A new one: `@cuecard.command(NAME, help=..., short_help=..., epilog=_AS_WRITTEN + EXIT_CODES)`, its own
# options, then `@client_options`; it gets `server: ClientOptions`, calls `server.client()` once its arguments
# are checked, and raises CuecardError for anything `main` should print as `cuecard: <message>` (exit 2).


def _variables(path: str | None, pairs: tuple[str, ...] | list[str] | None = None) -> dict[str, Any]:
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


def _rendered(api: ApiClient, ref: str, variables: dict[str, Any]) -> tuple[Any, dict[str, str]]:
    answer, headers = api.call("POST", f"/prompts/{quoted(ref)}/render", body={"variables": variables})
    return (answer.get("data") if isinstance(answer, dict) else answer), headers


def _pretty(value: Any, *, sort_keys: bool = False) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=sort_keys) + "\n"


def _selector(api: ApiClient, ref: Reference) -> str:
    """The diff route's `from`/`to` for a reference; a bare id is its published version's number."""
    if ref.selector == "number":
        return str(ref.number)
    if ref.selector == "label":
        return str(ref.label)
    if ref.selector == "latest":
        return "latest"
    prompt, _ = api.call("GET", f"/prompts/{quoted(ref.key)}")
    return str(prompt["prompt_version"])


@cuecard.command(
    "diff", short_help="diff two versions of a prompt on a running server",
    help="Prints the unified diff of the two templates, then the changes of model, parameters, tools, "
         "tool_choice, functions, template_metadata, is_raw_template, virtual_key, variables, variables_schema and "
         "strict_variables. "
         "REF is id@<version>, id@latest, id@<label> or id (the published version); both name the "
         "same prompt.",
    epilog=_AS_WRITTEN + EXIT_CODES)
@click.argument("ref_a", metavar="REF_A")
@click.argument("ref_b", metavar="REF_B")
@click.option("--variables", "variables_path", metavar="FILE",
              help="a JSON object of variables: also render both versions with them and diff the bodies")
@click.option("--json", "as_json", is_flag=True, help="print the API's diff as JSON (with `rendered_diff`)")
@client_options
def diff(ref_a: str, ref_b: str, variables_path: str | None, as_json: bool, server: ClientOptions) -> int:
    old, new = parse_reference(ref_a, param="REF_A"), parse_reference(ref_b, param="REF_B")
    if old.key != new.key:
        raise CuecardError(f"REF_A and REF_B must name the same prompt; got {old.key!r} and {new.key!r}.")
    variables = _variables(variables_path) if variables_path else None
    api = server.client()
    params = {"from": _selector(api, old), "to": _selector(api, new)}
    answer, _ = api.call("GET", f"/prompts/{quoted(old.key)}/diff", params=params)
    if variables is not None:
        bodies = [_pretty(_rendered(api, str(ref), variables)[0], sort_keys=True) for ref in (old, new)]
        answer["rendered_diff"] = unified_text_diff(*bodies, old_name=f"{ref_a} (rendered)",
                                                    new_name=f"{ref_b} (rendered)")
    if as_json:
        print(json.dumps(answer, indent=2, ensure_ascii=False))
        return 0
    print(_diff_text(answer), end="")
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


@cuecard.command(
    "render", short_help="print the request body a prompt renders to, from a running server",
    help="Renders REF (id@<version>, id@latest, id@<label> or id) with the variables given and prints "
         "the request body as indented JSON.",
    epilog=_AS_WRITTEN + EXIT_CODES)
@click.argument("ref", metavar="REF")
@click.option("--var", "pairs", multiple=True, metavar="K=V",
              help="a variable (a string); repeat it; wins over --variables")
@click.option("--variables", "variables_path", metavar="FILE", help="a JSON object of variables")
@click.option("--json", "as_json", is_flag=True,
              help="print one JSON object: prompt_id, slug, version and the rendered body")
@client_options
def render(ref: str, pairs: tuple[str, ...], variables_path: str | None, as_json: bool, server: ClientOptions) -> int:
    parse_reference(ref, param="REF")
    variables = _variables(variables_path, pairs)
    body, headers = _rendered(server.client(), ref, variables)
    if as_json:
        version = headers.get("x-cuecard-prompt-version")
        print(json.dumps({"prompt_id": headers.get("x-cuecard-prompt-id"), "slug": headers.get("x-cuecard-prompt-slug"),
                          "version": int(version) if version and version.isdigit() else version, "body": body},
                         ensure_ascii=False))
        return 0
    print(_pretty(body), end="")
    return 0


PULL_HELP = "write the latest prompts and partials into prompt files"


@cuecard.command(
    "pull", short_help=PULL_HELP,
    help="Writes each prompt's latest version to DIR/<collection>/<slug>.prompt and each partial's to "
         "<slug>.partial (the default collection at the top of DIR). A file that already holds its version is "
         "left untouched. The format: docs/prompt-files.md.",
    epilog=_AS_WRITTEN + EXIT_CODES)
@click.argument("directory", metavar="DIR", type=click.Path(file_okay=False, path_type=Path))
@click.option("--collection", metavar="C", help="only this collection (by slug or id)")
@click.option("--json", "as_json", is_flag=True, help="print one JSON object: the files and whether each was written")
@client_options
def pull(directory: Path, collection: str | None, as_json: bool, server: ClientOptions) -> int:
    from handlers import cli_output, prompt_sync

    api = server.client()
    with cli_output.progress("Reading the registry") as step:
        pulled = prompt_sync.pull(api, directory, collection=collection, step=step)
    if as_json:
        print(cli_output.pulled_json(pulled, str(directory)))
    else:
        cli_output.show_pulled(pulled, str(directory))
    return 0


PUSH_HELP = "make the registry match prompt files, a version per change"


@cuecard.command(
    "push", short_help=PUSH_HELP,
    help="Compares each .prompt and .partial file under DIR with its latest version in the registry (by content "
         "hash) and makes exactly one new version for each file that differs, creating new prompts, partials and "
         "collections; unchanged files make nothing, so it is safe to run on every commit. --label and --publish "
         "then point the label, or the published version, at each file's version.",
    epilog=_AS_WRITTEN + EXIT_CODES)
@click.argument("directory", metavar="DIR", type=click.Path(file_okay=False, path_type=Path))
@click.option("--dry-run", is_flag=True, help="print the plan (new, changed, unchanged) and each diff; change nothing")
@click.option("--check", is_flag=True, help="change nothing; exit 1 and print the diff if the registry differs")
@click.option("--label", metavar="L", help="move label L to each file's version (e.g. staging)")
@click.option("--publish", is_flag=True, help="publish each file's version")
@click.option("--force", is_flag=True,
              help="move labels and publish even when the new version requires variables the old did not")
@click.option("--json", "as_json", is_flag=True, help="print one JSON object: the plan, or what was done")
@client_options
def push(directory: Path, dry_run: bool, check: bool, label: str | None, publish: bool, force: bool, as_json: bool,
         server: ClientOptions) -> int:
    from handlers import cli_output, prompt_sync

    files = prompt_sync.read_files(directory)
    api = server.client()
    with cli_output.progress("Reading the registry") as step:
        registry = prompt_sync.read_registry(api, step=step)
    changes = prompt_sync.plan(files, registry)
    prompt_sync.guard_warnings(api, changes, label=label)
    drifted = any(change.status != "unchanged" for change in changes)
    if not (dry_run or check):
        with cli_output.progress("Pushing", total=len(changes)) as step:
            prompt_sync.apply(api, changes, registry, label=label, publish=publish, force=force, step=step)
    applied = not (dry_run or check)
    if as_json:
        print(cli_output.plan_json(changes, applied=applied))
    else:
        cli_output.show_plan(changes, applied=applied, with_diffs=not applied)
    return 1 if check and drifted else 0


if __name__ == "__main__":
    raise SystemExit(main())
