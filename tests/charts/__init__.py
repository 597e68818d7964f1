"""Tests of the Helm chart in charts/ioc-platform: values and schema, rendering, and installing it for real."""
