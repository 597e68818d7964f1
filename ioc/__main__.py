"""`python -m ioc` runs the `ioc` command line."""

from ioc.cli import main

main()
