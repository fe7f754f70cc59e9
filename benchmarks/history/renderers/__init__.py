"""Renderers of the hybridwrap 0.1-0.3 results archived in benchmarks/history/results."""
