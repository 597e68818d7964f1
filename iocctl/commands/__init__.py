"""The `ioc` command groups, one module each; `iocctl.cli` registers them on the root group."""
