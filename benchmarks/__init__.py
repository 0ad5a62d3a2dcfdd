"""Quality and speed benchmarks against public instances and peer solvers (not tests)."""
