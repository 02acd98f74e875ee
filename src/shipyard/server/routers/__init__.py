"""Routers of the native API, one per domain; each route's name is its permission-table key."""
