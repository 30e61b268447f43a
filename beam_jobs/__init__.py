"""Thin Apache Beam glue over `wit_pipeline` and `queries`: options, DoFns, counters, IO.

Each job is one module with a `run(argv)` and runs locally (FnApiRunner) or on Dataflow.
"""

import logging


class _NoBigQueryWarning(logging.Filter):
    """Beam warns on import that its BigQuery client is missing unless the `gcp` extra is
    installed; wit never uses BigQuery, so the line is noise in every job's output."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("apitools not found")


logging.getLogger().addFilter(_NoBigQueryWarning())
