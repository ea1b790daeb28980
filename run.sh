#!/bin/sh
# The streaming function's entry point. The Lambda Web Adapter (AWS_LAMBDA_EXEC_WRAPPER=/opt/bootstrap)
# starts this, waits for AWS_LWA_READINESS_CHECK_PATH to answer, then streams the function URL's
# requests to this port and the responses back, chunk by chunk.
set -e
export PYTHONPATH="/var/task${PYTHONPATH:+:$PYTHONPATH}"
exec python3 -m uvicorn handlers.asgi:app --host 127.0.0.1 --port "${AWS_LWA_PORT:-8000}" \
  --no-access-log --timeout-keep-alive 75
