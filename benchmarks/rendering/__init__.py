"""One renderer per RESULTS.md section (benchmarks/render_results.py puts them together)."""
