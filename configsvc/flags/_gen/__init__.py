"""Generated (scripts/gen_flagd_stubs.py)."""
