"""Test harness shared by the integration tests, the simulated cluster and the benchmark."""
