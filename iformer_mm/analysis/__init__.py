"""Analysis: parameter / MAC counts and latency benchmarks."""
