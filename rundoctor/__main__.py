"""``python -m rundoctor`` runs the command line."""

from rundoctor.cli import main

if __name__ == "__main__":  # `check --jobs` workers import this module again: they must not run it
    main()
