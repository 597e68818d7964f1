"""`python -m iocctl` runs the `ioc` command line."""

from iocctl.cli import main

main()
