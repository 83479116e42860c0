from tests.support.postgres import pg_schema, pg_url  # noqa: F401 - fixtures
