"""The PostgreSQL backend of the store: the same parts and schema as SQLite's, over psycopg 3.

Imported only when a store is opened by a postgresql:// URL, so the live process never loads it.
"""
