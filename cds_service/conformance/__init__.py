"""A CDS Hooks 2.0 conformance checker for any service (`cds-service check`)."""
