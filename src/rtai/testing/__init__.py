"""Test rigs shared by the test suite and the benchmarks (not used by a call)."""
