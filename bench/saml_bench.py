"""SAML response processing, side by side on the same Okta-shaped signed response, plus end-to-end ACS logins/s.

    DEBUG=1 .venv/bin/python bench/saml_bench.py [--iterations 200] [--e2e-logins 300]
        [--database-url postgres://postgres@127.0.0.1:5432/gatehouse_saml_bench] [--workers 2] [--clients 8]

Part 1 (one process, no database): the median time to accept one response (Response and Assertion both
RSA-SHA256 signed, ~5 KB) with
  * Gatehouse: ``saml.acs.verify_response`` (hardened parse, shape checks, pysaml2 with the in-process
    verifier and its schema check on libxml2, the extra recipient/destination/bearer/time checks);
  * python3-saml: ``OneLogin_Saml2_Response.is_valid`` in strict mode (the peer);
  * stock pysaml2: ``parse_authn_request_response`` forking ``xmlsec1`` per signature, with its own
    xmlschema validator;
  * for the record: Gatehouse with the assertion encrypted to a 3072-bit SP key (decryption runs only then),
    pysaml2 with only the verifier swapped, and python-xmlsec verification alone.
Part 2 (bounded): gunicorn (sync workers) + PostgreSQL, N real SP-initiated logins posted to the ACS by
client threads; each response has its own AuthnRequest and assertion ID, so nothing is refused as a replay.

Prints the figures and the command line. Never asserts anything: benchmarks do not decide the test suite.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import threading
import time
import urllib.parse
from http.client import HTTPConnection
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _median_ms(fn, iterations: int) -> float:
    for _ in range(min(10, iterations)):
        fn()
    samples = []
    for _ in range(iterations):
        t0 = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t0) * 1000)
    return statistics.median(samples)


def part1(iterations: int) -> dict[str, float]:
    import saml2.sigver
    import saml2.xml.schema
    import xmlsec
    from lxml import etree
    from onelogin.saml2.response import OneLogin_Saml2_Response
    from onelogin.saml2.settings import OneLogin_Saml2_Settings
    from saml2 import BINDING_HTTP_POST

    from saml import schema
    from saml.acs import verify_response
    from saml.models import SamlSettings
    from saml.sp import acs_url, client_for, sp_entity_id
    from tests.saml.idp import build_response, make_key

    slug, idp = "bench", "http://www.okta.com/exkBENCH"
    key = make_key("bench-idp")
    cfg = SamlSettings(pk=1, idp_entity_id=idp, certificates=[key.cert_b64], idp_initiated=True,
                       sso_urls=[{"binding": "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect",
                                  "location": "https://idp.test/sso"}])
    resp = build_response(sp_entity_id=sp_entity_id(slug), acs_url=acs_url(slug), idp_entity_id=idp, key=key,
                          name_id="ada@example.test", groups=("eng", "ops"))
    raw = __import__("base64").b64decode(resp)
    print(f"response: {len(raw)} bytes, Response and Assertion signed (RSA-SHA256, exc-c14n)")

    results: dict[str, float] = {}
    results["Gatehouse verify_response (pysaml2 + in-process verifier + extra checks)"] = _median_ms(
        lambda: verify_response(cfg=cfg, slug=slug, workspace_id=1, saml_response=resp), iterations)

    url = urllib.parse.urlparse(acs_url(slug))
    onelogin = OneLogin_Saml2_Settings({
        "strict": True, "debug": False,
        "sp": {"entityId": sp_entity_id(slug),
               "assertionConsumerService": {"url": acs_url(slug), "binding": BINDING_HTTP_POST}},
        "idp": {"entityId": idp, "singleSignOnService": {"url": "https://idp.test/sso"}, "x509cert": key.cert_b64},
        "security": {"wantAssertionsSigned": True, "wantMessagesSigned": True, "rejectDeprecatedAlgorithm": True},
    })
    request_data = {"https": "off", "http_host": url.hostname, "server_port": str(url.port or 80),
                    "script_name": url.path, "get_data": {}, "post_data": {"SAMLResponse": resp}}

    def python3_saml() -> None:
        if not OneLogin_Saml2_Response(onelogin, resp).is_valid(request_data, raise_exceptions=True):
            raise RuntimeError("python3-saml refused the response")

    results["python3-saml strict is_valid (peer)"] = _median_ms(python3_saml, iterations)

    stock = client_for(cfg, slug, in_process=False)
    patched = saml2.sigver.validate_doc_with_schema
    saml2.sigver.validate_doc_with_schema = saml2.xml.schema.validate  # truly stock: pysaml2's own validator

    def stock_pysaml2() -> None:
        if stock.parse_authn_request_response(resp, BINDING_HTTP_POST, outstanding={}) is None:
            raise RuntimeError("stock pysaml2 refused the response")

    results["stock pysaml2 (xmlsec1 fork per signature, xmlschema)"] = _median_ms(stock_pysaml2, max(20, iterations // 5))
    inproc = client_for(cfg, slug, in_process=True)
    results["pysaml2 + in-process verifier only (xmlschema kept)"] = _median_ms(
        lambda: inproc.parse_authn_request_response(resp, BINDING_HTTP_POST, outstanding={}), iterations)
    saml2.sigver.validate_doc_with_schema = patched
    assert schema.install()

    root = etree.fromstring(raw)
    sig = root.find("{http://www.w3.org/2000/09/xmldsig#}Signature")
    pem = key.cert_pem

    def xmlsec_alone() -> None:
        ctx = xmlsec.SignatureContext()
        ctx.key = xmlsec.Key.from_memory(pem, xmlsec.constants.KeyDataFormatCertPem)
        ctx.register_id(root, "ID")
        ctx.verify(sig)

    results["python-xmlsec verify of one signature alone"] = _median_ms(xmlsec_alone, iterations)
    # For the record: the same response with its assertion encrypted to a 3072-bit SP key (RSA-OAEP + AES-256-CBC,
    # as Okta sends it). Only encrypted assertions pay for decryption; the key is read from memory here, not the
    # database (part 1 has none).
    from saml import acs, sp_keys

    sp_key = sp_keys.generate(sp_entity_id(slug))
    encrypted = build_response(sp_entity_id=sp_entity_id(slug), acs_url=acs_url(slug), idp_entity_id=idp, key=key,
                               name_id="ada@example.test", groups=("eng", "ops"), encrypt_to=sp_key.cert_pem)
    stored_keys = acs.selectors.sp_decryption_keys
    acs.selectors.sp_decryption_keys = lambda cfg: {sp_key.fingerprint_sha256: sp_key.key_pem}
    try:
        results["Gatehouse verify_response, assertion encrypted (RSA-OAEP 3072 + AES-256-CBC)"] = _median_ms(
            lambda: verify_response(cfg=cfg, slug=slug, workspace_id=1, saml_response=encrypted), iterations)
    finally:
        acs.selectors.sp_decryption_keys = stored_keys

    return results


def part2(database_url: str, logins: int, workers: int, clients: int) -> dict[str, float]:
    import django
    from django.conf import settings
    from django.core.management import call_command

    from audit.record import Actor
    from saml import services
    from saml.models import IssuedAuthnRequest
    from saml.sp import acs_url, sp_entity_id
    from tests.saml.idp import build_response, idp_metadata, make_key
    from workspaces.models import Membership, User, Workspace
    from workspaces.services import membership_add, workspace_create

    assert settings.DATABASES["default"]["ENGINE"].endswith("postgresql"), "part 2 needs PostgreSQL"
    call_command("migrate", verbosity=0)
    port = 18000 + os.getpid() % 1000
    base = f"http://127.0.0.1:{port}"
    slug, idp = "bench", "http://www.okta.com/exkBENCH"
    key = make_key("bench-idp")
    actor = Actor.system("bench")
    workspace = Workspace.objects.filter(slug=slug).first()
    if workspace is None:
        owner, _ = User.objects.get_or_create(email="owner@bench.test")
        workspace = workspace_create(slug=slug, name="Bench", owner=owner, actor=actor)
    emails = [f"user{i}@bench.test" for i in range(20)]
    for email in emails:
        if not Membership.objects.filter(workspace=workspace, user__email=email).exists():
            membership_add(workspace=workspace, email=email, actor=actor)
    from django.test import override_settings

    with override_settings(PUBLIC_BASE_URL=base):
        cfg = services.saml_settings_save(workspace=workspace, actor=actor,
                                          metadata_xml=idp_metadata(idp, "https://idp.test/sso", key))
        print(f"building {logins} signed responses ...", flush=True)
        bodies = []
        expires = django.utils.timezone.now() + django.utils.timezone.timedelta(hours=1)
        for i in range(logins):
            rid = f"id-bench-{os.getpid()}-{i}-{time.time_ns()}"
            IssuedAuthnRequest.objects.create(workspace=workspace, request_id=rid, expires_at=expires)
            resp = build_response(sp_entity_id=sp_entity_id(slug), acs_url=acs_url(slug), idp_entity_id=idp,
                                  key=key, name_id=emails[i % len(emails)], in_response_to=rid)
            bodies.append(urllib.parse.urlencode({"SAMLResponse": resp}).encode())
    del cfg
    env = {**os.environ, "DATABASE_URL": database_url, "PUBLIC_BASE_URL": base, "DEBUG": "0",
           "SECRET_KEY": "bench-only-secret-key-0123456789-abcdefghijklmnop", "ALLOWED_HOSTS": "127.0.0.1",
           "LOG_LEVEL": "WARNING"}
    env.pop("REDIS_URL", None)
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "config.wsgi", "-b", f"127.0.0.1:{port}", "-w", str(workers),
         "--worker-class", "sync", "--log-level", "warning"],
        cwd=ROOT, env=env,
    )
    try:
        for _ in range(100):
            try:
                conn = HTTPConnection("127.0.0.1", port, timeout=2)
                conn.request("GET", "/login/")
                conn.getresponse().read()
                break
            except OSError:
                time.sleep(0.1)
        lock = threading.Lock()
        queue = list(bodies)
        latencies: list[float] = []
        statuses: dict[int, int] = {}

        def worker() -> None:
            conn = HTTPConnection("127.0.0.1", port, timeout=30)
            while True:
                with lock:
                    if not queue:
                        return
                    body = queue.pop()
                t0 = time.perf_counter()
                conn.request("POST", f"/saml/{slug}/acs/", body=body,
                             headers={"Content-Type": "application/x-www-form-urlencoded"})
                r = conn.getresponse()
                r.read()
                dt = time.perf_counter() - t0
                with lock:
                    latencies.append(dt * 1000)
                    statuses[r.status] = statuses.get(r.status, 0) + 1

        threads = [threading.Thread(target=worker) for _ in range(clients)]
        t0 = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.perf_counter() - t0
    finally:
        server.terminate()
        server.wait(timeout=10)
    print(f"statuses: {statuses} (302 = logged in)")
    ok = statuses.get(302, 0)
    return {"logins": ok, "seconds": elapsed, "logins_per_second": ok / elapsed,
            "p50_ms": statistics.median(latencies), "p95_ms": statistics.quantiles(latencies, n=20)[18]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=200)
    parser.add_argument("--e2e-logins", type=int, default=300, help="0 skips part 2")
    parser.add_argument("--database-url", default="postgres://postgres@127.0.0.1:5432/gatehouse_saml_bench")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--clients", type=int, default=8)
    args = parser.parse_args()
    if args.e2e_logins:
        os.environ["DATABASE_URL"] = args.database_url
        subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-qc",
                        f"CREATE DATABASE {args.database_url.rsplit('/', 1)[1]}"], capture_output=True)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ.setdefault("DEBUG", "1")
    os.environ.pop("REDIS_URL", None)
    import django

    django.setup()
    print("command: DEBUG=1 .venv/bin/python", " ".join(sys.argv))
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"machine: {os.cpu_count()} cores shared by the client, gunicorn and PostgreSQL, load average {load}: "
          "expect ±15-25% noise; compare the ratio to python3-saml\n")
    results = part1(args.iterations)
    width = max(len(k) for k in results)
    print("\n## SAML response processing, median per response")
    for name, ms in results.items():
        print(f"  {name:<{width}}  {ms:7.2f} ms")
    gatehouse, peer = list(results.values())[0], list(results.values())[1]
    stock = list(results.values())[2]
    print(f"\n  Gatehouse / python3-saml = {gatehouse / peer:.2f}x (target <= 1.0x: no slower than the peer);  stock pysaml2 / Gatehouse = {stock / gatehouse:.1f}x")
    if args.e2e_logins:
        e2e = part2(args.database_url, args.e2e_logins, args.workers, args.clients)
        print(f"\n## End-to-end ACS logins (gunicorn {args.workers} sync workers + PostgreSQL, {args.clients} client threads)")
        print(f"  {e2e['logins']} logins in {e2e['seconds']:.2f} s = {e2e['logins_per_second']:.0f} logins/s; "
              f"p50 {e2e['p50_ms']:.1f} ms, p95 {e2e['p95_ms']:.1f} ms")


if __name__ == "__main__":
    main()
