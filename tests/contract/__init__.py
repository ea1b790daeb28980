"""Contract tests: the store ports (core/ports.py, core/jobs.py), written once, run against every backend."""
