"""Generated stubs of the configsvc protos (tools/generate.py)."""
