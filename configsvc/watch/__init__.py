"""Watch fan-out: one mirror change feed to many bounded client streams."""
