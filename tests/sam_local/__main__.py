"""`python -m tests.sam_local` (what `./dev sam-local` runs): see tests/sam_local/run.py."""

from tests.sam_local.run import main

raise SystemExit(main())
