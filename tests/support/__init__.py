"""Test support: real servers (PostgreSQL, Chroma) started for the test session."""
