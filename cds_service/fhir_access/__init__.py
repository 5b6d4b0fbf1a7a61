"""FHIR access for one invocation: the allow-listed fetcher and the optional Redis cache."""
