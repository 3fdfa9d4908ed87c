#!/usr/bin/env python3
"""Lints every certificate and CRL the test suite produced with pkilint (RFC 5280 profile).

The tests copy what gitca issued into $GITCA_ARTIFACTS/<ca>/ (ca.crt, ca.crl, leaf-*.pem with
issuer-*.pem, the issuer each leaf's file carries, test.txt naming the test, and
for a CA with an offline root root.crt and root.crl: the root, its CRL, and the intermediate
linted as the root's signee);
this runs pkilint's own command-line entry points in one process over all of them and fails
on any finding at WARNING or above.
"""
import contextlib
import glob
import io
import sys

from pkilint.bin import lint_crl, lint_pkix_cert, lint_pkix_signer_signee_cert_chain


def run(main, args):
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(args)
    return code, out.getvalue().strip()


def main(root):
    documents = 0
    findings = []
    for d in sorted(glob.glob(f"{root}/*/")):
        checks = []
        if glob.glob(f"{d}ca.crt"):
            checks.append((lint_pkix_cert.main, ["lint", "-s", "WARNING", f"{d}ca.crt"]))
        if glob.glob(f"{d}ca.crl"):
            checks.append((lint_crl.main, ["lint", "-s", "WARNING", "-t", "CRL", "-p", "PKIX", f"{d}ca.crl"]))
        if glob.glob(f"{d}root.crt"):
            checks.append((lint_pkix_cert.main, ["lint", "-s", "WARNING", f"{d}root.crt"]))
            checks.append((lint_pkix_signer_signee_cert_chain.main, ["lint", "-s", "WARNING", f"{d}root.crt", f"{d}ca.crt"]))
            checks.append((lint_crl.main, ["lint", "-s", "WARNING", "-t", "ARL", "-p", "PKIX", f"{d}root.crl"]))
        for leaf in sorted(glob.glob(f"{d}leaf-*.pem")):
            checks.append((lint_pkix_cert.main, ["lint", "-s", "WARNING", leaf]))
            # Under the issuer the leaf's own file carries (certs/NAME.crt is leaf + issuer).
            issuer = leaf.replace("/leaf-", "/issuer-")
            if not glob.glob(issuer):
                issuer = f"{d}ca.crt"
            if glob.glob(issuer):
                checks.append((lint_pkix_signer_signee_cert_chain.main, ["lint", "-s", "WARNING", issuer, leaf]))
        for fn, args in checks:
            documents += 1
            code, text = run(fn, args)
            if code != 0 or text:
                test = open(f"{d}test.txt").read() if glob.glob(f"{d}test.txt") else "?"
                findings.append(f"{args[-1]} (made by test {test}):\n{text}")
    for f in findings:
        print(f)
    print(f"pkilint: {documents} checks over {len(glob.glob(f'{root}/*/'))} CAs, {len(findings)} with findings at WARNING or above")
    return 1 if findings or documents == 0 else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
