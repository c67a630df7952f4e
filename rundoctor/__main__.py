"""``python -m rundoctor`` runs the command line."""

from rundoctor.cli import main

main()
