"""Jobs that run outside any request over a served bundle: top-k for every listener."""
