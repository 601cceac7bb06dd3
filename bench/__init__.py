"""The adapter's benchmarks: `make bench` runs them and rewrites docs/performance.md."""
