"""`python -m loadmaster` runs the command line."""

from loadmaster.cli.main import main

main()
