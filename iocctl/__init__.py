"""The operator-facing tools behind the `ioc` command: CLI command groups, the local stack, image building.

The top of the house: it may call into any component; nothing imports it.
"""
