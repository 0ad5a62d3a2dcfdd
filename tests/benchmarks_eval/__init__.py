"""Tests of the benchmark suite's evaluator and runner (not the benchmark itself)."""
