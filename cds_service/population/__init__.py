"""Population scale: score, validate and build training tables from FHIR Bulk Data (`$export` NDJSON).

Each patient goes through the hook path itself: `patient.score_patient` answers the service's
prefetch templates from the patient's resources, runs `pipeline.invoke` with the hook's time
replaced by an index date, and flattens what the card would say into one row. `spark` is the only
module that knows about Spark: it reads the NDJSON, groups resources by patient without collecting
them to the driver, and calls the plain per-patient function on the executors.
"""
