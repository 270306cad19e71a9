"""Database operations shared by several services (plain functions on a connection)."""
