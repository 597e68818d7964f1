"""`python -m ioc` runs the `ioc` command line."""

from iocctl.cli import main

main()
