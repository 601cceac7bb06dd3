"""The adapter's database: every table (`schema`), creating and upgrading them (`migrations`,
under one PostgreSQL advisory lock) and the calls-and-recordings store (`store`).

SQLite through aiosqlite by default; the same portable SQLAlchemy Core statements run on
PostgreSQL through asyncpg.
"""
