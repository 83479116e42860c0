"""https origins: certificates are verified against the client's trust store and the origin's host
name, which also goes out as SNI."""

from __future__ import annotations

import asyncio
import datetime
import ssl

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from shadowtap.proxy.upstream_http import ConnectFailed
from tests.upstream_http.raw_origin import RawOrigin, answer_each_request, body_of, pool

pytestmark = pytest.mark.timeout(30)


@pytest.fixture
def certificate(tmp_path):
    """A self-signed certificate for `localhost` (and for no IP address): (cert file, key file)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1)).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_file, key_file


def server_context(certificate, names_seen: list) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*certificate)
    context.sni_callback = lambda _socket, name, _context: names_seen.append(name)
    return context


def fetch_over_tls(certificate, client_context: ssl.SSLContext | None, host: str):
    names_seen: list = []

    async def scenario():
        async with RawOrigin(answer_each_request, tls=server_context(certificate, names_seen)) as origin:
            client = pool(ssl_context=client_context)
            try:
                response = await client.request("POST", origin.target(host=host), [], b"{}")
                return response.status, await body_of(response), names_seen
            finally:
                await client.close()

    return asyncio.run(scenario())


def test_an_https_origin_whose_certificate_the_context_trusts_answers_and_gets_its_name_as_sni(certificate):
    trusting = ssl.create_default_context(cafile=str(certificate[0]))
    assert fetch_over_tls(certificate, trusting, "localhost") == (200, b"ok", ["localhost"])


def test_an_https_origin_with_a_certificate_outside_the_default_trust_store_is_refused(certificate):
    with pytest.raises(ConnectFailed, match="certificate verify failed"):
        fetch_over_tls(certificate, None, "localhost")


def test_a_trusted_certificate_for_another_host_name_is_refused(certificate):
    trusting = ssl.create_default_context(cafile=str(certificate[0]))
    with pytest.raises(ConnectFailed, match="certificate verify failed"):
        fetch_over_tls(certificate, trusting, "127.0.0.1")  # the certificate names only localhost
