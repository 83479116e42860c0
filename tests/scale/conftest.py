from tests.scale.otlp_receiver import receiver  # noqa: F401 - fixture
from tests.support.postgres import pg_relay, pg_schema, pg_url  # noqa: F401 - fixtures
