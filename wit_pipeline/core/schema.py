"""Every table that crosses a stage boundary, in one place. Stages validate what they read.

Column names follow img2dataset where its files are involved (`url`, `caption`), so the
selected-pairs parquet is img2dataset's input as it is.
"""

from __future__ import annotations

import pyarrow as pa

# harvest -> candidates/*.parquet: every pair that survived filtering and matched >= 1 query.
CANDIDATES = pa.schema(
    [
        pa.field("key", pa.string(), nullable=False),  # wit_pipeline.core.keys.sample_key(url, text)
        pa.field("url", pa.string(), nullable=False),  # normalised absolute image URL
        pa.field("text", pa.string(), nullable=False),  # alt (or title) text, whitespace-collapsed
        pa.field("page_url", pa.string(), nullable=False),
        pa.field("language", pa.string(), nullable=False),  # fastText label without __label__
        pa.field("lang_score", pa.float32(), nullable=False),
        pa.field("query_ids", pa.list_(pa.int32()), nullable=False),  # sorted, unique
    ]
)

# harvest -> query_counts.parquet: matches per query over all candidates (before balancing).
QUERY_COUNTS = pa.schema(
    [
        pa.field("query_id", pa.int32(), nullable=False),
        pa.field("query", pa.string(), nullable=False),
        # the list's language in an allowlist folder (its Wikipedia code); null for a single list
        pa.field("language", pa.string(), nullable=True),
        pa.field("count", pa.int64(), nullable=False),
        pa.field("selected", pa.int64(), nullable=False),  # how many of those survived balancing
        # how many this query kept itself: cap, exactly min(count, t); prob, about that. A
        # selected pair may also hold queries that did not keep it, so selected >= kept.
        pa.field("kept", pa.int64(), nullable=False),
    ]
)

# harvest -> selected/*.parquet: img2dataset's input (url_col="url", caption_col="caption").
SELECTED = pa.schema(
    [
        pa.field("url", pa.string(), nullable=False),
        pa.field("caption", pa.string(), nullable=False),
        pa.field("key", pa.string(), nullable=False),
        pa.field("page_url", pa.string(), nullable=False),
        pa.field("language", pa.string(), nullable=False),
        pa.field("lang_score", pa.float32(), nullable=False),
        pa.field("query_ids", pa.list_(pa.int32()), nullable=False),
        # the matched queries themselves: later stages need not be given the same allowlist
        pa.field("queries", pa.list_(pa.string()), nullable=False),
    ]
)

# Columns of SELECTED that img2dataset carries into each sample's json and parquet row.
SELECTED_EXTRA_COLUMNS = ("key", "page_url", "language", "lang_score", "query_ids", "queries")
# In raw shards our key travels as `sample_key`: img2dataset owns "key" (and names tar members by it).
RAW_KEY_COLUMN = "sample_key"
RAW_EXTRA_COLUMNS = tuple(RAW_KEY_COLUMN if c == "key" else c for c in SELECTED_EXTRA_COLUMNS)

# Dead-letter records (every job): what failed, where, and why.
DEAD_LETTER = pa.schema(
    [
        pa.field("stage", pa.string(), nullable=False),
        pa.field("source", pa.string(), nullable=False),  # file URL (and record offset) or sample key
        pa.field("error", pa.string(), nullable=False),
    ]
)

# Final shards: keys of each sample's {key}.json (curate -> train, inspect).
SAMPLE_JSON_KEYS = (
    "key",
    "url",
    "page_url",
    "text",
    "queries",
    "phash",
    "width",
    "height",
    "language",
    "lang_score",
)


class SchemaError(ValueError):
    """A table does not have the columns/types a stage needs."""


def validate(table: pa.Table | pa.Schema, expected: pa.Schema, what: str = "table") -> None:
    """Raise SchemaError naming every missing or mistyped column; extra columns are fine."""
    schema = table if isinstance(table, pa.Schema) else table.schema
    problems = []
    for field in expected:
        idx = schema.get_field_index(field.name)
        if idx < 0:
            problems.append(f"missing column {field.name!r} ({field.type})")
        elif not schema.field(idx).type.equals(field.type):
            problems.append(f"column {field.name!r} is {schema.field(idx).type}, expected {field.type}")
    if problems:
        raise SchemaError(f"{what}: " + "; ".join(problems))
