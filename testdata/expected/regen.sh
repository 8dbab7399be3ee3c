#!/bin/sh
# Regenerate every fixture in testdata/expected/ (run from anywhere; needs /work/shared/tools set up:
# ../shared/tools/setup.sh). Deterministic: a re-run gives identical files.
set -eu
cd "$(dirname "$0")/../.."
PY=${EDM_SHARED_TOOLS:-/work/shared/tools}/py
KEY=edm-example-key-change-me
SALT=edm-kdf-salt-val
X=testdata/expected

"$PY" $X/miekg_unpack.py --self-test testdata/dns
"$PY" $X/gen_edge_corpus.py $X/edge.fstrm

"$PY" $X/gen_expected.py --fstrm testdata/sample.fstrm \
    --well-known testdata/well-known-domains.txt \
    --ignored-names testdata/ignored-question-names.txt \
    --ignored-clients testdata/ignored-client-ips.txt \
    --password $KEY --salt $SALT --out $X/sample.expected.json

"$PY" $X/gen_expected.py --fstrm testdata/unbound.fstrm \
    --well-known $X/unbound-well-known.txt \
    --ignored-names $X/unbound-ignored-names.txt \
    --ignored-clients $X/unbound-ignored-clients.txt \
    --password $KEY --salt $SALT --out $X/unbound.expected.json

"$PY" $X/gen_expected.py --fstrm $X/edge.fstrm \
    --well-known $X/edge-well-known.txt \
    --ignored-names $X/edge-ignored-names.txt \
    --ignored-clients $X/edge-ignored-clients.txt \
    --explicit-threshold 1 \
    --password $KEY --salt $SALT --out $X/edge.expected.json
