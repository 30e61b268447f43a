"""A seeded synthetic web for tests and the demo: concept images, HTML pages packed as
WARC/WAT files, and a loopback HTTP server that serves them."""
