"""Support code shared by the test suites (real services for the integration tests)."""
