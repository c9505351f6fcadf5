"""Throwaway TLS material for tests: a CA and a server certificate it signed.

Made with the `openssl` command line (Debian's), so the client under test verifies a
chain the way it would against AWS: its trust store holds the CA, the server presents a
leaf whose subjectAltName lists the names and addresses it is reached by.
"""

import ipaddress
import os
import subprocess


def _openssl(*args):
    subprocess.run(["openssl", *args], check=True, capture_output=True)


def make_ca_and_cert(directory, hostnames_or_ips, days=2):
    """Write ca.pem, ca.key, server.pem, server.key under `directory`; return their paths.

    `hostnames_or_ips` become DNS: or IP: subjectAltNames; the first is also the CN.
    """
    os.makedirs(directory, exist_ok=True)
    names = list(hostnames_or_ips)
    if not names:
        raise ValueError("at least one hostname or IP is needed")
    paths = {k: os.path.join(directory, f) for k, f in (
        ("ca_cert", "ca.pem"), ("ca_key", "ca.key"), ("cert", "server.pem"),
        ("key", "server.key"), ("csr", "server.csr"), ("ext", "server.ext"))}
    sans = []
    for n in names:
        try:
            sans.append(f"IP:{ipaddress.ip_address(n)}")
        except ValueError:
            sans.append(f"DNS:{n}")
    _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
             "-nodes", "-keyout", paths["ca_key"], "-out", paths["ca_cert"], "-days", str(days),
             "-subj", "/CN=fakeaws test CA",
             "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    _openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
             "-keyout", paths["key"], "-out", paths["csr"], "-subj", f"/CN={names[0]}")
    with open(paths["ext"], "w", encoding="ascii") as f:
        f.write("basicConstraints=CA:FALSE\n"
                "keyUsage=critical,digitalSignature,keyEncipherment\n"
                "extendedKeyUsage=serverAuth\n"
                f"subjectAltName={','.join(sans)}\n")
    _openssl("x509", "-req", "-in", paths["csr"], "-CA", paths["ca_cert"], "-CAkey",
             paths["ca_key"], "-CAcreateserial", "-out", paths["cert"], "-days", str(days),
             "-extfile", paths["ext"])
    for k in ("csr", "ext"):
        os.remove(paths.pop(k))
    return paths
