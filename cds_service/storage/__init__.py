"""The service's database: schema, the rows a call writes, feedback, explanations, audit, SMART state, analytics queries."""
