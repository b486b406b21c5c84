"""The SQLite store: schema, connections, writes and reads. Only this package writes SQL."""
