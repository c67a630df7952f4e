"""The checks: one module each, listed in :mod:`rundoctor.checks.registry`.

This package module stays empty so that importing one check's helpers (``checks.base``) does
not import every check: ``rundoctor ls`` needs none of them.
"""
