"""The `cds-service` command line."""
