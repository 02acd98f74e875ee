"""Shipyard."""
