"""HTTPS for the load comparison: the one certificate all three proxies serve, made with openssl at run
time, and the client side's OpenSSL settings, which every client of the HTTPS rows (wrk, h2load and
tls_client.py) runs with.

The three proxies are held to the same handshake from both ends: the client offers only TLS 1.3, only
TLS_AES_128_GCM_SHA256 and only X25519 (OPENSSL_CONF below), and nginx and HAProxy are configured to the
same where they can be (templates). Spawngate's TLS versions and suites are rustls' (TLS 1.3 and 1.2,
the ring provider's suites), not configurable; it follows the client's choice.
"""

import os
import subprocess

# The certificate's names: the clients connect to 127.0.0.1 (wrk and h2load send no usable SNI for it,
# so each proxy serves its only, default, certificate).
LEAF_SAN = "DNS:localhost,IP:127.0.0.1"
TLS_VERSION = "TLSv1.3"
CIPHER = "TLS_AES_128_GCM_SHA256"
GROUP = "X25519"
DAYS = 2

CLIENT_CONF = f"""# The benchmark's TLS clients (OPENSSL_CONF): one version, one suite, one group.
openssl_conf = bench_client
[bench_client]
ssl_conf = bench_ssl
[bench_ssl]
system_default = bench_tls
[bench_tls]
MinProtocol = {TLS_VERSION}
MaxProtocol = {TLS_VERSION}
Ciphersuites = {CIPHER}
Groups = {GROUP}
"""


class Certificate:
    """Paths of the run's CA and leaf: `combined` is the leaf then its key, the form HAProxy reads."""

    def __init__(self, root):
        self.dir = os.path.join(root, "tls")
        self.ca = os.path.join(self.dir, "ca.pem")
        self.cert = os.path.join(self.dir, "leaf.pem")
        self.key = os.path.join(self.dir, "leaf.key")
        self.combined = os.path.join(self.dir, "leaf-and-key.pem")
        self.client_conf = os.path.join(self.dir, "openssl-client.cnf")


def _openssl(*args, cwd):
    done = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True, timeout=30)
    if done.returncode != 0:
        raise RuntimeError(f"openssl {' '.join(args)} failed: {done.stderr.strip()}")


def make_certificate(root):
    """An ECDSA P-256 CA and a leaf it signs for localhost and 127.0.0.1, in root/tls."""
    c = Certificate(root)
    os.makedirs(c.dir, exist_ok=True)
    ca_key = os.path.join(c.dir, "ca.key")
    csr = os.path.join(c.dir, "leaf.csr")
    ext = os.path.join(c.dir, "leaf.ext")
    with open(ext, "w") as f:
        f.write(f"subjectAltName={LEAF_SAN}\nbasicConstraints=critical,CA:FALSE\n"
                "keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n")
    for key in (ca_key, c.key):
        _openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", key,
                 cwd=c.dir)
    _openssl("req", "-x509", "-new", "-key", ca_key, "-subj", "/CN=Spawngate benchmark CA",
             "-days", str(DAYS), "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign", "-out", c.ca, cwd=c.dir)
    _openssl("req", "-new", "-key", c.key, "-subj", "/CN=localhost", "-out", csr, cwd=c.dir)
    _openssl("x509", "-req", "-in", csr, "-CA", c.ca, "-CAkey", ca_key, "-CAcreateserial",
             "-days", str(DAYS), "-extfile", ext, "-out", c.cert, cwd=c.dir)
    with open(c.combined, "w") as out:
        for part in (c.cert, c.key):
            with open(part) as f:
                out.write(f.read())
    # nginx's workers read nothing here (the master loads the files); keys stay private to the run.
    for path in (ca_key, c.key, c.combined):
        os.chmod(path, 0o600)
    with open(c.client_conf, "w") as f:
        f.write(CLIENT_CONF)
    return c


def client_env(certificate):
    """The environment of a TLS client: OpenSSL reads the run's client settings as its defaults."""
    env = os.environ.copy()
    env["OPENSSL_CONF"] = certificate.client_conf
    return env
