"""The PostgreSQL adapter of the store: a psycopg connection pool driven from worker threads.

Mirrors `sidecar.store.sqlite` module by module. Import `open_postgres_store` from
`sidecar.store.postgres.store`; this package itself imports no driver, so the settings can
validate a URL (`sidecar.postgres_url`) without loading psycopg.
"""
