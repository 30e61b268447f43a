"""Thin Apache Beam glue over `wit_pipeline` and `queries`: options, DoFns, counters, IO.

Each job is one module with a `run(argv)` and runs locally (FnApiRunner) or on Dataflow.
"""
