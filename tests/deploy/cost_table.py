"""The README's cost tables, computed from template.yaml and infra/settings.py.

    .venv/bin/python tests/deploy/cost_table.py            # print them
    .venv/bin/python tests/deploy/cost_table.py --write    # replace them in README.md

Memory sizes come from the template, cache lifetimes from the template's parameters and the settings'
defaults; durations are the assumptions below; prices are us-east-1 list prices. tests/deploy checks
that the README shows exactly what this prints, so a change of configuration shows up there.
"""

from __future__ import annotations

import argparse
import re
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from infra.settings import Settings  # noqa: E402
from infra.table_definition import load_template  # noqa: E402

START, END = "<!-- cost-tables:start (tests/deploy/cost_table.py --write) -->", "<!-- cost-tables:end -->"

# us-east-1 list prices, November 2026 (AWS pricing pages).
PRICES_AS_OF = "us-east-1 list prices, November 2026"
LAMBDA_ARM_GB_SECOND = 0.0000133334  # first 7.5 billion GB-s a month, arm64
LAMBDA_PER_MILLION_REQUESTS = 0.20
HTTP_API_PER_MILLION = 1.00  # first 300 million a month, per 512 KB
DYNAMODB_PER_MILLION_RRU = 0.125  # on-demand; a strongly consistent read of up to 4 KB is 1 RRU
DYNAMODB_PER_MILLION_WRU = 0.625  # on-demand; a write of up to 1 KB is 1 WRU
SECRETS_PER_10K_CALLS = 0.05
SQS_PER_MILLION = 0.40  # standard queue, per 64 KB
EVENTBRIDGE_PER_MILLION = 1.00  # custom events, per 64 KB

# Assumptions (not measured on Lambda).
RENDER_SECONDS = 0.002  # billed duration of a warm render; see the README for why
COMPLETION_SECONDS = 2.0  # a non-streamed completion of a few hundred tokens: the provider's latency
CUECARD_COMPLETION_OVERHEAD = 0.0011  # bench/proxy.py: cuecard's own median overhead per completion
MONTH_SECONDS = 30 * 86_400
MILLION = 1_000_000


@dataclass(frozen=True)
class Config:
    api_memory_mb: int
    stream_memory_mb: int
    worker_memory_mb: int
    pointer_ttl: float
    auth_ttl: float
    binding_ttl: float
    secret_ttl: float


def config() -> Config:
    template = load_template()
    globals_memory = template["Globals"]["Function"]["MemorySize"]
    resources = template["Resources"]

    def memory(function: str) -> int:
        return int(resources[function]["Properties"].get("MemorySize", globals_memory))

    defaults = Settings()
    return Config(
        api_memory_mb=memory("ApiFunction"),
        stream_memory_mb=memory("StreamFunction"),
        worker_memory_mb=memory("WorkerFunction"),
        pointer_ttl=float(template["Parameters"]["PointerCacheTtlSeconds"]["Default"]),
        auth_ttl=defaults.auth_cache_ttl,
        binding_ttl=defaults.virtual_key_cache_ttl,
        secret_ttl=defaults.secret_cache_ttl,
    )


def _money(value: float) -> str:
    return f"${value:,.2f}"


def _count(value: float) -> str:
    return f"{value:,.0f}"


@dataclass(frozen=True)
class Row:
    item: str
    quantity: str
    unit_price: str
    cost: float | None  # None: shown as text only
    counted: str = "always"  # "always", "cold" (only in the all-cold total) or "no" (a per-container bound)
    cost_text: str = ""

    def cells(self) -> str:
        cost = self.cost_text or ("" if self.cost is None else _money(self.cost))
        return f"| {self.item} | {self.quantity} | {self.unit_price} | {cost} |"


def _lambda_rows(memory_mb: int, seconds: float, note: str) -> list[Row]:
    gb = memory_mb / 1024
    gb_seconds = MILLION * seconds * gb
    return [
        Row("Lambda requests", f"{_count(MILLION)} invocations", f"${LAMBDA_PER_MILLION_REQUESTS:.2f} per 1M",
            LAMBDA_PER_MILLION_REQUESTS),
        Row("Lambda duration (arm64)",
            f"1M x {seconds * 1000:g} ms x {memory_mb} MB ({gb:g} GB) = {_count(gb_seconds)} GB-s ({note})",
            f"${LAMBDA_ARM_GB_SECOND:.10f} per GB-s", gb_seconds * LAMBDA_ARM_GB_SECOND),
    ]


def _table(rows: list[Row], suffix: str = "") -> str:
    always = sum(r.cost or 0 for r in rows if r.counted == "always")
    cold = sum(r.cost or 0 for r in rows if r.counted == "cold")
    total = f"{_money(always)} warm to {_money(always + cold)} all cold" if cold else _money(always)
    lines = ["| | quantity | unit price | cost |", "|---|---|---|---|"]
    lines += [row.cells() for row in rows]
    lines.append(f"| **total** | | | **{total}**{suffix} |")
    return "\n".join(lines)


def _rru(rru: float) -> float:
    return rru / 1e6 * DYNAMODB_PER_MILLION_RRU


def render_table(c: Config) -> str:
    cold_rru = 2  # the API key's item and the prompt's pointer item: one consistent GetItem (1 RRU) each
    bound = MONTH_SECONDS / c.pointer_ttl + MONTH_SECONDS / c.auth_ttl
    rows = _lambda_rows(c.api_memory_mb, RENDER_SECONDS, "ApiFunction")
    rows += [
        Row("HTTP API requests", _count(MILLION), f"${HTTP_API_PER_MILLION:.2f} per 1M", HTTP_API_PER_MILLION),
        Row("DynamoDB reads, warm", "0 RRU: key, pointer and version come from memory", "", 0.0),
        Row("DynamoDB reads, every render cold", f"1M x {cold_rru} RRU (key, pointer) = {_count(MILLION * cold_rru)} RRU",
            f"${DYNAMODB_PER_MILLION_RRU} per 1M RRU", _rru(MILLION * cold_rru), counted="cold"),
        Row("(what the caches allow)",
            f"at most {_count(MONTH_SECONDS)} s / {c.pointer_ttl:g} s + {_count(MONTH_SECONDS)} s / {c.auth_ttl:g} s = "
            f"{_count(bound)} RRU a month per warm container, prompt reference and key",
            f"${DYNAMODB_PER_MILLION_RRU} per 1M RRU", _rru(bound), counted="no"),
        Row("DynamoDB writes", "0 WRU: a render writes nothing", f"${DYNAMODB_PER_MILLION_WRU} per 1M WRU", 0.0),
    ]
    return _table(rows)


def completion_table(c: Config) -> str:
    seconds = COMPLETION_SECONDS + CUECARD_COMPLETION_OVERHEAD
    cold_rru = 3  # key, pointer, and the virtual key binding
    secret_bound = MONTH_SECONDS / c.secret_ttl
    binding_bound = MONTH_SECONDS / c.binding_ttl
    rows = _lambda_rows(c.api_memory_mb, seconds, f"ApiFunction: {COMPLETION_SECONDS:g} s provider + "
                                                  f"{CUECARD_COMPLETION_OVERHEAD * 1000:g} ms cuecard")
    rows += [
        Row("HTTP API requests", f"{_count(MILLION)} (none through `StreamingUrl`: a function URL costs nothing extra)",
            f"${HTTP_API_PER_MILLION:.2f} per 1M", HTTP_API_PER_MILLION),
        Row("DynamoDB reads, warm", "0 RRU", "", 0.0),
        Row("DynamoDB reads, every completion cold",
            f"1M x {cold_rru} RRU (key, pointer, binding) = {_count(MILLION * cold_rru)} RRU",
            f"${DYNAMODB_PER_MILLION_RRU} per 1M RRU", _rru(MILLION * cold_rru), counted="cold"),
        Row("(what the caches allow)",
            f"the render's bound, plus {_count(MONTH_SECONDS)} s / {c.binding_ttl:g} s = {_count(binding_bound)} RRU a "
            f"month per warm container and binding", f"${DYNAMODB_PER_MILLION_RRU} per 1M RRU", _rru(binding_bound),
            counted="no", cost_text=f"+{_money(_rru(binding_bound))}"),
        Row("Secrets Manager reads", f"at most {_count(MONTH_SECONDS)} s / {c.secret_ttl:g} s = {_count(secret_bound)} a "
            f"month per warm container and provider key", f"${SECRETS_PER_10K_CALLS} per 10,000",
            secret_bound / 10_000 * SECRETS_PER_10K_CALLS, counted="no"),
        Row("DynamoDB writes", "0 WRU: a completion writes nothing", f"${DYNAMODB_PER_MILLION_WRU} per 1M WRU", 0.0),
    ]
    return _table(rows, ", plus the provider's tokens")


def job_table(c: Config) -> str:
    seconds = COMPLETION_SECONDS + CUECARD_COMPLETION_OVERHEAD
    wru = 1 + 3  # the claim (PutItem, under 1 KB) and the result (UpdateItem of an item up to 3 KB)
    cold_rru = 2  # pointer and binding: a job has no API key to look up
    rows = _lambda_rows(c.worker_memory_mb, seconds, "WorkerFunction, as if each job ran alone")
    rows += [
        Row("SQS requests", "1M sends (yours), receives and deletes: at most 1M each, fewer in batches of up to 5",
            f"${SQS_PER_MILLION:.2f} per 1M", 3 * SQS_PER_MILLION),
        Row("DynamoDB writes", f"1M x {wru} WRU (claim 1, result of up to 3 KB 3) = {_count(MILLION * wru)} WRU",
            f"${DYNAMODB_PER_MILLION_WRU} per 1M WRU", wru * DYNAMODB_PER_MILLION_WRU),
        Row("DynamoDB reads, every job cold", f"1M x {cold_rru} RRU (pointer, binding) = {_count(MILLION * cold_rru)} RRU",
            f"${DYNAMODB_PER_MILLION_RRU} per 1M RRU", _rru(MILLION * cold_rru), counted="cold"),
        Row("result delivery", "1M EventBridge events (or 1M SQS replies: $0.40)", f"${EVENTBRIDGE_PER_MILLION:.2f} per 1M",
            EVENTBRIDGE_PER_MILLION),
    ]
    return _table(rows, ", plus the provider's tokens")


def tables() -> str:
    c = config()
    return "\n".join([
        START,
        f"**1 million renders** (`POST /v1/prompts/{{id}}/render` through `ApiUrl`; {PRICES_AS_OF}):",
        "",
        render_table(c),
        "",
        "**1 million completions** (`POST /v1/prompts/{id}/completions`, non-streamed, through `ApiUrl`):",
        "",
        completion_table(c),
        "",
        "**1 million completion jobs** through `JobsQueue` and the worker:",
        "",
        job_table(c),
        END,
    ])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--write", action="store_true", help="replace the tables in README.md")
    args = parser.parse_args(argv)
    text = tables()
    if not args.write:
        print(text)
        return 0
    readme = ROOT / "README.md"
    current = readme.read_text()
    pattern = re.compile(re.escape(START) + ".*?" + re.escape(END), re.S)
    if not pattern.search(current):
        print(f"README.md has no {START} ... {END} block", file=sys.stderr)
        return 1
    readme.write_text(pattern.sub(lambda _: text, current))
    return 0


if __name__ == "__main__":
    sys.exit(main())
