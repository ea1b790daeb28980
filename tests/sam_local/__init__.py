"""`./dev sam-local`: the four functions under SAM CLI in a Lambda-like Python 3.13 container (run.py).

Not a pytest suite: `./dev test` never collects it (no test_*.py here); `.ci/run` runs it after the tests.
"""
