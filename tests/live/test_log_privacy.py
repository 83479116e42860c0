"""What logging writes at `[server] log_level = "debug"`: shadowtap's own debug lines, never a
library's, since libraries quote whole request and response bodies at DEBUG; and the access log
never shows a credential from the query string."""

import logging
import subprocess
import sys

import httpx
import pytest

from shadowtap.core import logs
from shadowtap.core.logs import configure_logging
from tests.support.fake_candidates import FakeCandidate
from tests.support.shadow_support import candidate_toml, shadows_of

BODY = "{'messages': [{'role': 'user', 'content': 'mail jane.canary@example.com, card 4111 1111 1111 1111'}]}"
LIBRARY_LOGGERS = ["openai._base_client", "httpcore.http11", "httpcore.connection", "httpx", "LiteLLM",
                   "LiteLLM Router", "litellm", "aiohttp.client", "instructor"]
TOUCHED = ["", "uvicorn", "uvicorn.error", "uvicorn.access", "openai", "httpx", "httpcore", "litellm", "LiteLLM",
           "LiteLLM Router", "LiteLLM Proxy", "aiohttp", "asyncio", "instructor", "ragas", "urllib3", "hpack",
           "multipart", *LIBRARY_LOGGERS]


@pytest.fixture
def log_file(tmp_path):
    """A log file configured as the proxy configures it, with every logger touched at its level in a
    fresh process (other tests run uvicorn in-process, which sets some). Afterwards its handler is
    removed and every logger touched is restored (pytest's handlers on the root logger come and go
    by themselves)."""
    saved = {}
    for name in TOUCHED:
        logger = logging.getLogger(name)
        saved[name] = (logger.level, list(logger.handlers), list(logger.filters), logger.propagate)
        if name:
            logger.setLevel(logging.NOTSET)
    path = tmp_path / "proxy.log"
    yield path
    root = logging.getLogger()
    for handler in list(root.handlers):
        if isinstance(handler, logging.FileHandler) and handler.baseFilename == str(path):
            root.removeHandler(handler)
            handler.close()
    root.setLevel(saved[""][0])
    for name, (level, handlers, filters, propagate) in saved.items():
        if name:
            logger = logging.getLogger(name)
            logger.setLevel(level)
            logger.handlers[:], logger.filters[:], logger.propagate = handlers, filters, propagate


def written(path) -> str:
    for handler in logging.getLogger().handlers:
        handler.flush()
    return path.read_text()


@pytest.mark.parametrize("name", [*LIBRARY_LOGGERS, "a.library.nobody.listed"])
def test_a_library_debug_record_is_never_written_when_the_level_is_debug(log_file, name):
    configure_logging("debug", "json", str(log_file))
    logging.getLogger(name).debug("Request options: %s", BODY)
    logging.getLogger("shadowtap.shadow").debug("shadow call finished")
    text = written(log_file)
    assert "shadow call finished" in text, "debug logging is off, so this test proves nothing"
    assert "jane.canary" not in text and "4111" not in text


def test_a_library_that_lowers_its_own_level_again_still_writes_no_debug_record(log_file):
    configure_logging("debug", "json", str(log_file))
    logging.getLogger("openai").setLevel(logging.DEBUG)  # what OPENAI_LOG=debug does when openai is imported
    logging.getLogger("openai._base_client").debug("Request options: %s", BODY)
    assert "jane.canary" not in written(log_file)


def test_library_loggers_stay_at_info_or_above_whatever_the_configured_level(log_file):
    configure_logging("debug", "json", str(log_file))
    assert all(logging.getLogger(name).getEffectiveLevel() >= logging.INFO for name in LIBRARY_LOGGERS)
    configure_logging("warning", "json", str(log_file))
    logs.hold_library_loggers("warning")  # as the shadow worker calls it after importing litellm
    assert all(logging.getLogger(name).getEffectiveLevel() >= logging.WARNING for name in LIBRARY_LOGGERS)


def test_library_warnings_are_still_written_when_the_level_is_debug(log_file):
    configure_logging("debug", "text", str(log_file))
    logging.getLogger("openai._base_client").warning("Retrying request to /chat/completions")
    assert "Retrying request" in written(log_file)


def test_litellms_own_stderr_handler_is_taken_away_so_its_records_are_scrubbed_like_every_other(log_file):
    import io

    own_stream = io.StringIO()
    litellm_logger = logging.getLogger("LiteLLM")
    litellm_logger.addHandler(logging.StreamHandler(own_stream))   # what importing litellm does
    configure_logging("info", "json", str(log_file), secrets=["sk-candidate-secret-123456"])
    logs.hold_library_loggers("info")     # the shadow worker calls it once litellm is imported
    litellm_logger.warning("call failed: Authorization: Bearer sk-candidate-secret-123456")
    assert own_stream.getvalue() == ""
    text = written(log_file)
    assert "call failed" in text and "sk-candidate-secret-123456" not in text


def test_configuring_logging_twice_adds_each_uvicorn_filter_once(log_file):
    configure_logging("info", "json", str(log_file))
    configure_logging("info", "json", str(log_file))
    ours_by_logger = {"uvicorn.error": logs._DropDeliberateTruncation, "uvicorn.access": logs._RedactQueryCredentials}
    for name, ours in ours_by_logger.items():
        kinds = [type(existing) for existing in logging.getLogger(name).filters]
        assert kinds.count(ours) == 1, (name, kinds)


@pytest.mark.e2e  # starts a Python process
@pytest.mark.parametrize("target, shown", [
    ("/v1/models?key=canary-query-key", "/v1/models?key=[secret]"),
    ("/v1/chat/completions?alt=sse&api_key=canary-query-key&x=1", "/v1/chat/completions?alt=sse&api_key=[secret]&x=1"),
    ("/v1/files?access_token=canary-query-key&sig=canary-query-key",
     "/v1/files?access_token=[secret]&sig=[secret]"),
    ("/v1/chat/completions?api-version=2024-02-01", "/v1/chat/completions?api-version=2024-02-01"),
])
def test_the_access_log_never_shows_a_query_credential(log_file, target, shown):
    # In a process of its own, like the live proxy's: once litellm is imported (other tests here do)
    # it rewrites every log record with its own redaction, which would hide what ours does.
    script = (
        "import logging, sys\n"
        "from shadowtap.core.logs import configure_logging\n"
        "configure_logging('info', 'json', sys.argv[1])\n"
        # The record exactly as uvicorn's HTTP protocol writes it.
        "logging.getLogger('uvicorn.access').info('%s - \"%s %s HTTP/%s\" %d', '127.0.0.1:5000', 'POST', sys.argv[2],"
        " '1.1', 200)\n"
        "assert 'litellm' not in sys.modules\n")
    result = subprocess.run([sys.executable, "-c", script, str(log_file), target], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    text = written(log_file)
    assert shown in text and "canary-query-key" not in text


def test_debug_logging_never_writes_what_a_candidate_was_sent_or_answered(capfd, proxy_factory, simulator):
    personal = ["jane.canary.4d2e@example.com", "4539 1488 0343 6467", "+44 20 7946 0958"]
    prompt = f"Mail {personal[0]}, card {personal[1]}, phone {personal[2]}"
    with FakeCandidate("ok") as answering, FakeCandidate("quote_request") as quoting:  # its 400 quotes the body
        proxy = proxy_factory(simulator.base_url, extra_config='[server]\nlog_level = "debug"\n'
                              + candidate_toml("a", answering.base_url, allow_private_network=True)
                              + candidate_toml("b", quoting.base_url, allow_private_network=True))
        response = httpx.post(f"{proxy.base_url}/chat/completions",
                              json={"model": "sim-large", "messages": [{"role": "user", "content": prompt}]})
        assert response.status_code == 200
        shadows = shadows_of(proxy.store_path, response.headers["x-shadowtap-exchange-id"], 2)
        assert proxy.stop() == 0
    assert shadows["a"]["outcome"] == "ok" and shadows["b"]["outcome"] == "error"
    assert all(personal[0] in request["body"]["messages"][-1]["content"]
               for request in answering.requests + quoting.requests), "the candidates never saw it, so proves nothing"
    places = {path.name: path.read_bytes() for path in proxy.workdir.iterdir()}  # log, stderr, store, -wal
    places["stdout"] = capfd.readouterr().out.encode()  # litellm's own handler writes there
    leaks = [f"{value} in {label}" for label, data in places.items() for value in personal if value.encode() in data]
    assert leaks == []
    assert '"shadow call finished"' in proxy.log_text(), "no debug line from the shadow worker: debug was off"
