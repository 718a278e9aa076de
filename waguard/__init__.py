"""waguard local runtime: the `waguard` CLI (serve, invoke, report)."""
