"""Shared foundations: sample keys, accounting, paths, schemas, parquet IO, --help layout."""
