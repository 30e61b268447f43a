"""The web: WARC/WAT extraction, WHATWG URLs, URL safety, the download's egress proxy."""
