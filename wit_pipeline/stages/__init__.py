"""Stages: each a config plus pure functions the Beam jobs wrap."""
