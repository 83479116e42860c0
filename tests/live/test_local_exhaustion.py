"""A local resource error (EMFILE, "Too many open files") is never reported as the primary's
failure: the upstream client raises ProxyOverloaded, which names the proxy, not the primary."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.timeout(60)

# Runs in a child: lowering the open-file limit and using it up must not touch the test process.
_EXHAUSTED_CLIENT = textwrap.dedent("""
    import asyncio, os, resource, socket
    from shadowtap.core.config import PrimaryConfig
    from shadowtap.core.errors import ProxyOverloaded
    from shadowtap.proxy.upstream import PrimaryClient

    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    async def main():
        client = PrimaryClient(PrimaryConfig(base_url=f"http://127.0.0.1:{port}/v1"))
        await client.start()
        resource.setrlimit(resource.RLIMIT_NOFILE, (256, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
        hoard = []
        try:
            while True:
                hoard.append(os.open(os.devnull, os.O_RDONLY))
        except OSError:
            pass
        try:
            await client.send("POST", client.url_for("/chat/completions", b""), [], b"{}")
        except ProxyOverloaded as exc:
            print("overloaded:", exc)
        except Exception as exc:
            print("other:", type(exc).__name__, exc)
        finally:
            for fd in hoard:
                os.close(fd)
            await client.close()

    asyncio.run(main())
""")


@pytest.mark.e2e  # starts a Python process
def test_running_out_of_file_descriptors_raises_proxy_overloaded_not_an_upstream_failure():
    result = subprocess.run([sys.executable, "-c", _EXHAUSTED_CLIENT], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("overloaded:"), result.stdout
    assert "not at fault" in result.stdout and "Too many open files" in result.stdout
