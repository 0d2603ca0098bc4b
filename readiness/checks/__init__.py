"""Readiness checks: one module per check, each registering itself with ``readiness.registry.register``.

Modules here are imported automatically; a module whose name starts with ``_`` is a helper.
"""
