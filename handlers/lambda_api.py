"""Lambda entry point behind API Gateway (HTTP API v2 and REST v1 events), through Mangum.

The container is built at import, inside Lambda's init phase, so a warm invocation only routes. What only some
requests use is built on its first use instead: the admin request models and most of the hyperparameter models
(pydantic `defer_build`), the OpenAPI document, provider adapters, the Responses route, `/mcp` and jsonschema.
`./dev bench cold_import` measures the import and the first render against `import fastapi, mangum, boto3`.

After the import the process's objects are frozen out of the garbage collector (`gc.freeze`): they live as long
as the process, and a full collection would otherwise walk all of them (about 150,000, botocore's models
included), a pause of tens of milliseconds on some request.

SnapStart (template.yaml's `SnapStart` parameter; README "SnapStart"): Lambda snapshots the process after this
import and resumes every new execution environment from that copy. The init phase calls no store, so no
connection, credential or cached answer is in the snapshot (the DynamoDB client connects on its first call; on
SnapStart, Lambda gives the SDK container credentials that it refreshes itself). Two hooks, registered only where
the runtime ships `snapshot_restore_py` (Python 3.12 and later):
- before the snapshot, `prepare_snapshot` builds what a first request would otherwise build, so restored copies
  start with it;
- after each restore, `after_restore` reseeds `random`, whose state every copy would otherwise share: botocore's
  retry jitter and cuecard's backoffs (infra/providers/retry.py, the DynamoDB adapters) draw from it, and copies
  retrying in step defeat the jitter. Ids and keys come from `os.urandom` and `secrets`, which stay unique.
"""

from __future__ import annotations

import gc
import random

from mangum import Mangum

from handlers.container import build_container

app = build_container().asgi_app()
handler = Mangum(app, lifespan="off")


def prepare_snapshot() -> None:
    """Builds the deferred pydantic models and loads the IDNA codec (the first HTTPS call's), then freezes again."""
    import encodings.idna  # noqa: F401

    from pydantic import BaseModel

    from core import admin_requests, hyperparameters

    for module in (admin_requests, hyperparameters):
        for value in vars(module).values():
            if isinstance(value, type) and issubclass(value, BaseModel) and value.__module__ == module.__name__:
                value.model_rebuild()
    gc.freeze()


def after_restore() -> None:
    random.seed()  # from os.urandom: each restored copy draws its own jitter


try:
    from snapshot_restore_py import register_after_restore, register_before_snapshot  # type: ignore[import-not-found]
except ImportError:  # not on Lambda, or a runtime before Python 3.12: no snapshots to prepare for
    pass
else:
    register_before_snapshot(prepare_snapshot)
    register_after_restore(after_restore)

gc.freeze()
