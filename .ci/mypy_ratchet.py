"""mypy on infra/ and handlers/, held to the error count in .ci/mypy-baseline, which may only go down.

More errors than recorded fails (fix the new ones); fewer also fails until the baseline is lowered to
the new count, so the gain is kept. core/ is checked strictly on its own (pyproject.toml).
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BASELINE = ROOT / ".ci" / "mypy-baseline"


def main() -> int:
    done = subprocess.run([sys.executable, "-m", "mypy", "infra", "handlers"], cwd=ROOT, capture_output=True, text=True)
    summary = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else done.stderr.strip()
    found = re.match(r"Found (\d+) errors?", summary)
    if done.returncode not in (0, 1) or (done.returncode == 1 and not found):
        print(done.stdout + done.stderr, file=sys.stderr)
        return 2
    errors = int(found.group(1)) if found else 0
    recorded = int(BASELINE.read_text().split()[0])
    if errors > recorded:
        print(done.stdout, file=sys.stderr)
        print(f"mypy: {errors} errors in infra/ and handlers/, more than the {recorded} recorded in "
              f"{BASELINE.relative_to(ROOT)}; fix the new ones.", file=sys.stderr)
        return 1
    if errors < recorded:
        print(f"mypy: {errors} errors in infra/ and handlers/, fewer than the {recorded} recorded: write {errors} "
              f"into {BASELINE.relative_to(ROOT)} to keep the gain.", file=sys.stderr)
        return 1
    print(f"mypy: infra/ and handlers/ at the recorded {recorded} errors; core/ strict.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
