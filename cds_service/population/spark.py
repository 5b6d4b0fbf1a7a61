"""The only module that knows Spark: read a Bulk Data export, group it by patient, run a `Job`, write parquet.

Resources are grouped on the executors (a shuffle by patient id): nothing but counts and the
validation report's narrow columns ever reach the driver. `master` is any Spark master URL
(`local[*]`, `spark://…`, `yarn`, `k8s://…`) or a Spark Connect URL (`sc://host:15002`). On a
cluster, every executor needs this package installed (the per-patient code and the bundled
service files and models), and `hooks_dir` / `model_dir` must be readable there.
"""
from __future__ import annotations

import os
import sys
import threading
import time
import warnings
from datetime import datetime, timezone
from typing import Any

from pyspark.sql import SparkSession
from pyspark.sql import functions as F
from pyspark.sql.pandas.types import from_arrow_schema

from cds_service.population.jobs import Job, parse_index_date, process, schema, to_table

# Bulk Data `$export` output: `<Type>.ndjson`, `<Type>.000.ndjson`, `<Type>-1.ndjson.gz`, … (Hadoop glob).
NDJSON_GLOB = "*.ndjson{,.gz}"
# A resource's patient: the Patient's own id, else `subject` or `patient` pointing at a Patient
# (relative or absolute reference). Resources outside any Patient compartment are not used.
_FHIR_ID = r"^[A-Za-z0-9\-.]{1,64}$"
_PATIENT_REF = r"(^|/)Patient/([A-Za-z0-9\-.]{1,64})$"
# PySpark 4 warns that pandas >= 3 is not fully supported; these jobs exchange Arrow tables, not pandas.
_PANDAS_WARNING = "PySpark does not yet fully support pandas"


def session(master: str = "local[*]", app_name: str = "cds-population", conf: dict[str, str] | None = None):
    """A SparkSession for `master`; a local master binds to 127.0.0.1 and runs this interpreter's Python.
    `conf` adds Spark settings (e.g. an event log for bench/population.py)."""
    warnings.filterwarnings("ignore", message=_PANDAS_WARNING, category=FutureWarning)
    if master.startswith("sc://"):
        return SparkSession.builder.remote(master).appName(app_name).getOrCreate()
    if master.startswith("local"):
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    builder = (SparkSession.builder.master(master).appName(app_name)
               .config("spark.sql.session.timeZone", "UTC")
               .config("spark.sql.parquet.outputTimestampType", "TIMESTAMP_MICROS")  # readable as UTC by pyarrow
               .config("spark.ui.showConsoleProgress", "false")  # our own bar counts the scoring tasks
               .config("spark.sql.execution.arrow.pyspark.enabled", "true"))
    if master.startswith("local"):
        builder = (builder.config("spark.driver.host", "127.0.0.1").config("spark.driver.bindAddress", "127.0.0.1")
                   .config("spark.ui.enabled", "false"))  # no web UI port on a developer's machine
    for key, value in (conf or {}).items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    return spark


def read_export(spark, path: str):
    """(patient_id, value) for every NDJSON line of the export under `path` (gzip read transparently)."""
    lines = (spark.read.option("recursiveFileLookup", "true").option("pathGlobFilter", NDJSON_GLOB).text(path)
             .where(F.length(F.trim("value")) > 0))
    # One parse per line, of the four fields that place it (the per-patient code parses the rest).
    head = F.from_json("value", "resourceType string, id string, subject struct<reference: string>, "
                                "patient struct<reference: string>")
    ref = F.coalesce(head["subject"]["reference"], head["patient"]["reference"])
    own_id = F.regexp_extract(head["id"], _FHIR_ID, 0)  # a FHIR id, like the references' (nothing else is a key)
    pid = F.when(head["resourceType"] == "Patient", own_id).otherwise(F.regexp_extract(ref, _PATIENT_REF, 2))
    return lines.select(pid.alias("patient_id"), "value").where(F.col("patient_id").isNotNull() & (F.col("patient_id") != ""))


def run(spark, job: Job, path: str, *, as_of: datetime | None = None, index_dates: str | None = None):
    """The job's rows, one per patient (per patient and index date with `index_dates`), as a DataFrame.

    `index_dates` is a CSV with `patient_id,index_date` (a date or date-time each): only the patients
    listed are processed. Otherwise every patient is taken at `as_of`.
    """
    resources = read_export(spark, path)
    if index_dates:
        dates = spark.read.option("header", "true").csv(index_dates).select("patient_id", F.col("index_date").alias("as_of"))
        resources = resources.join(F.broadcast(dates), "patient_id")
    else:
        resources = resources.withColumn("as_of", F.lit((as_of or datetime.now(timezone.utc)).isoformat()))
    arrow_schema = schema(job)

    def per_patient(key, table):
        patient_id, when = key[0].as_py(), parse_index_date(key[1].as_py())
        return to_table([process(job, patient_id, table.column("value").to_pylist(), when)], arrow_schema)

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=_PANDAS_WARNING, category=FutureWarning)
        return resources.groupBy("patient_id", "as_of").applyInArrow(
            per_patient, from_arrow_schema(arrow_schema, prefer_timestamp_ntz=False))


def write(rows, output: str, *, overwrite: bool = False) -> None:
    """Parquet at `output` (a directory of part files, as Spark writes it; pyarrow and pandas read it whole)."""
    with progress(rows.sparkSession, "scoring"):
        rows.write.mode("overwrite" if overwrite else "errorifexists").parquet(output)


def counts(spark, output: str, columns: tuple[str, ...]) -> dict[str, dict[Any, int]]:
    """Row counts per value of each column of the written output (a small aggregate on the driver)."""
    table = spark.read.parquet(output)
    return {c: {r[c]: r["count"] for r in table.groupBy(c).count().collect()} for c in columns}


def collect(spark, output: str, columns: tuple[str, ...]):
    """The narrow columns the validation report needs, as an Arrow table on the driver (≈ 50 bytes/patient)."""
    return spark.read.parquet(output).select(*columns).toArrow()


class progress:
    """A progress bar on stderr for the running Spark stages (tasks done / total); quiet on Spark Connect."""

    def __init__(self, spark, label: str, every_s: float = 0.5):
        self.label, self.every_s = label, every_s
        self.tracker = None if _is_connect(spark) else spark.sparkContext.statusTracker()
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.started = time.monotonic()
        self.tty, self.last_line = sys.stderr.isatty(), 0.0  # a log file gets a line every 10 s, not \r redraws

    def __enter__(self):
        if self.tracker is not None:
            self.thread.start()
        return self

    def __exit__(self, *exc):
        self.done.set()
        if self.thread.is_alive():
            self.thread.join()
            self._draw(final=True)
        return False

    def _loop(self):
        while not self.done.wait(self.every_s):
            self._draw()

    def _draw(self, final: bool = False):
        elapsed = time.monotonic() - self.started
        if final:
            sys.stderr.write(f"{self._line(1, 1)} done in {elapsed:.1f} s\n")
            return
        tracker = self.tracker
        if tracker is None:  # Spark Connect: nothing to draw
            return
        jobs = [tracker.getJobInfo(j) for j in tracker.getActiveJobsIds()]
        stages = [tracker.getStageInfo(s) for j in jobs if j is not None for s in j.stageIds]
        stages = [s for s in stages if s is not None]
        total, done = sum(s.numTasks for s in stages), sum(s.numCompletedTasks for s in stages)
        if total and (self.tty or elapsed - self.last_line >= 10):
            self.last_line = elapsed
            sys.stderr.write(f"{self._line(done, total)} {done}/{total} tasks, {elapsed:.0f} s " + ("" if self.tty else "\n"))
            sys.stderr.flush()

    def _line(self, done: int, total: int, width: int = 30) -> str:
        filled = int(width * done / total)
        return ("\r" if self.tty else "") + f"{self.label}: [{'#' * filled}{'.' * (width - filled)}]"


def _is_connect(spark) -> bool:
    return type(spark).__module__.startswith("pyspark.sql.connect")
