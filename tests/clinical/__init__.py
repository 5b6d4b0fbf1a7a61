"""Clinical scenarios written from the guidelines: plain FHIR R4 requests through the HTTP API."""
