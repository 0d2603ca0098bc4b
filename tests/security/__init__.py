"""Attacks on readiness from the hosts it audits (docs/security.md)."""
