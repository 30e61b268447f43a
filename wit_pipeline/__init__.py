"""wit: build CLIP-style WebImageText sets from web crawls, and train CLIP on them.

This package holds the pure library (no Beam imports): parsing, filtering, matching,
balancing, hashing, shard IO and the `wit` CLI. Beam glue lives in `beam_jobs`.
"""

__version__ = "0.1.0"
