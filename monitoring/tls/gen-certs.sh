#!/bin/sh
# Certificates for the `tls` overlay (docker-compose.tls.yml): a private CA,
# the collector's server certificate (otel-collector, and localhost for a
# collector reached from the host) and one client certificate the sidecars
# present (mTLS). Writes into the directory given, default tls/certs next to
# this script; needs only openssl.
#
#   sh monitoring/tls/gen-certs.sh
#   docker compose -f monitoring/docker-compose.yml -f monitoring/docker-compose.tls.yml up --build
#
# The two leaf keys are left readable by everyone (not the CA's): the collector (uid 10001) and the
# sidecars (uid 65532) read them through a bind mount, whatever user ran
# this. For a laptop; in production, issue them from your own CA and mount
# them as secrets owned by those users.
set -eu

out=${1:-$(dirname "$0")/certs}
days=${CERT_DAYS:-365}
mkdir -p "$out"
cd "$out"

# P-256: what rustls (the sidecars) and Go (the collector) both accept.
key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }

key ca.key
openssl req -x509 -new -key ca.key -sha256 -days "$days" -subj "/CN=otel-sidecar stack CA" \
  -addext "basicConstraints=critical,CA:TRUE" \
  -addext "keyUsage=critical,keyCertSign,cRLSign" \
  -out ca.pem

# name, subject, extensions
issue() {
  key "$1.key"
  openssl req -new -key "$1.key" -subj "/CN=$2" -out "$1.csr"
  printf '%s\n' "basicConstraints=critical,CA:FALSE" "keyUsage=critical,digitalSignature" "$3" > "$1.ext"
  openssl x509 -req -in "$1.csr" -CA ca.pem -CAkey ca.key -CAcreateserial -sha256 \
    -days "$days" -extfile "$1.ext" -out "$1.pem" 2>/dev/null
  rm -f "$1.csr" "$1.ext"
}

# rustls checks the name against subjectAltName only, never the CN.
issue collector otel-collector \
  "extendedKeyUsage=serverAuth
subjectAltName=DNS:otel-collector,DNS:localhost,IP:127.0.0.1"
issue sidecar otel-sidecar "extendedKeyUsage=clientAuth"

chmod 644 ./*.pem collector.key sidecar.key
rm -f ca.srl
echo "certificates in $(pwd): ca.pem, collector.pem/.key, sidecar.pem/.key"
