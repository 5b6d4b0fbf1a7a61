"""HTTP surface: views, request hooks (in one ordered registration), the per-call state, body limits,
the mapping of errors to HTTP, CORS, metrics, OpenAPI."""
