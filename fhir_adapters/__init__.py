"""FHIR R4 access and feature extraction. The leaf of the import graph: no Flask, no torch."""
