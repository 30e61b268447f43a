"""Shim for Beam's --setup_file on Dataflow: the metadata lives in pyproject.toml."""
from setuptools import setup

setup()
