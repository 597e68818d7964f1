"""Tests of the Kopf operators: pure builders first, then the real API server and services."""
