import sys

from wit_pipeline.inspect.cli import run

sys.exit(run())
