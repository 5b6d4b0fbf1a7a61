"""Helpers shared by the test suite and the benchmarks (importable as `cds_testing`: pytest puts `tests/`
on `sys.path` through `pythonpath` in pyproject.toml; a script adds `tests` itself).

- `paths`: the repository root, `tests/fixtures/` and the copied CDS Hooks spec examples.
- `apps`: the one way to build the app under test, with all or only some service files.
- `clock`: a settable clock for components built with `clock=` (deadlines, caches, TTLs) instead of sleeping.
- `optional`: optional dependencies: skipped on a developer machine, a failure in CI (CI=true).
- `fhir_factory`, `order_helpers`, `equation_helpers`, `synthetic`: FHIR resources and requests.
- `spec_rules`: the CDS Hooks checklist assertions applied to every response.
- `security_support`, `security_log_guard`: keys, tokens, trusted clients; the session-wide log scan.
- `servers`, `fhir_server`, `db_servers`: real servers on 127.0.0.1 for integration tests (the service under
  gunicorn, the FHIR server of tests/fhir_server/, PostgreSQL, Redis).
- `slow_clients`: connections that trickle their headers or body (slow-client tests and bench/slow_clients.py).
"""
