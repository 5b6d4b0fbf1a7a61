"""HTTP surface: views, request parsing limits, CORS, metrics, OpenAPI."""
