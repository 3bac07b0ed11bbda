"""The store: the ``audit_event`` table and the one path that writes it.

The models and their insert-only layers (ORM guard, database triggers), the row an event
becomes (request context, cleaned values), the recorder that commits it alone or with a
caller's transaction, and the spool that keeps what the database refused.
"""
