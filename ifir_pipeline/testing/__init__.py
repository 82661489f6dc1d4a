"""Test utilities shipped with the package: a local HTTP server that speaks the Messages API."""
