#!/bin/sh
# Fetch EXIficient's EXICodec.jar (bundled in the iso15118 0.31.2 wheel) for differential tests.
# Usage: tools/get_oracle_jar.sh [DIR]   (default: .oracle)  -- prints the jar's path on stdout.
# Then: export EXI_ORACLE_JAR="$(tools/get_oracle_jar.sh)"
# Never shipped: dev/CI only. Needs pip and python (zipfile); no unzip binary required.
set -eu
DIR="${1:-.oracle}"
PY="${PYTHON:-python3}"
mkdir -p "$DIR"
JAR="$DIR/EXICodec.jar"
if [ ! -s "$JAR" ]; then
    "$PY" -m pip download --quiet --no-deps --only-binary=:all: -d "$DIR" iso15118==0.31.2 >&2
    "$PY" - "$DIR" <<'PYEOF'
import sys, zipfile, glob, os
d = sys.argv[1]
whl = glob.glob(os.path.join(d, "iso15118-0.31.2-*.whl"))[0]
with zipfile.ZipFile(whl) as z:
    data = z.read("iso15118/shared/EXICodec.jar")
with open(os.path.join(d, "EXICodec.jar"), "wb") as f:
    f.write(data)
PYEOF
fi
cd "$DIR" && echo "$PWD/EXICodec.jar"
