#!/usr/bin/env bash
# Builds the Python and JavaScript check plugins in examples/ into
# components, installing the pinned tools on first use: componentize-py
# (examples/python/requirements.txt) in a virtual environment under the
# output folder, and jco (examples/js/package-lock.json) with `npm ci` in
# examples/js. Only PyPI and npm are needed, and only the first time.
#
#   examples/build-polyglot.sh [--out DIR] [python|js|python-template|js-template]...
#
# With no names it builds the two examples. A component is rebuilt only when
# its sources, the tool pins, wit/ or this script are newer than it. The components land
# in DIR (default target/polyglot) as NAME.wasm; each build prints its time
# and size.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(dirname "$here")"
out="$root/target/polyglot"
if [ "${1:-}" = "--out" ]; then
    out="$2"
    shift 2
fi
mkdir -p "$out"
out="$(cd "$out" && pwd)"
names=("$@")
if [ ${#names[@]} -eq 0 ]; then names=(python js); fi

python_tools() {
    local venv="$out/venv"
    # The pins are copied into the venv once installed, so a changed pin
    # reinstalls.
    if ! cmp -s "$here/python/requirements.txt" "$venv/requirements.txt"; then
        echo "installing componentize-py into $venv" >&2
        rm -rf "$venv"
        python3 -m venv "$venv"
        "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$here/python/requirements.txt" >&2
        cp "$here/python/requirements.txt" "$venv/requirements.txt"
    fi
}

js_tools() {
    local js="$here/js"
    if ! cmp -s "$js/package-lock.json" "$js/node_modules/.greenlight-lock"; then
        echo "installing jco into $js/node_modules" >&2
        (cd "$js" && npm ci --no-audit --no-fund --loglevel=error >&2)
        cp "$js/package-lock.json" "$js/node_modules/.greenlight-lock"
    fi
}

# Whether `$1` is missing or older than any of the other paths.
stale() {
    local target="$1"
    shift
    [ ! -e "$target" ] || [ -n "$(find "$@" -newer "$target" -print -quit)" ]
}

# Builds component `$1` with the command after it, timing it.
build() {
    local wasm="$out/$1.wasm"
    shift
    local start end
    start=$(date +%s%N)
    "$@" -o "$wasm.tmp" >&2
    mv "$wasm.tmp" "$wasm"
    end=$(date +%s%N)
    echo "built $wasm: $(stat -c %s "$wasm") bytes in $(((end - start) / 1000000)) ms"
}

for name in "${names[@]}"; do
    case "$name" in
    python | python-template)
        module=error_budget
        if [ "$name" = python-template ]; then module=template; fi
        python_tools
        # Only the sources count: the bytecode Python may cache beside them
        # is no reason to rebuild (and is not written while building).
        if stale "$out/$name.wasm" "$here"/python/*.py "$root/wit" "$out/venv/requirements.txt" "$here/build-polyglot.sh"; then
            (cd "$here/python" && PYTHONDONTWRITEBYTECODE=1 build "$name" "$out/venv/bin/componentize-py" \
                -d "$root/wit" -w greenlight:plugin/check-plugin@0.2.0 componentize "$module")
        else
            echo "up to date $out/$name.wasm: $(stat -c %s "$out/$name.wasm") bytes"
        fi
        ;;
    js | js-template)
        source=error-budget.js
        if [ "$name" = js-template ]; then source=template.js; fi
        js_tools
        if stale "$out/$name.wasm" "$here/js/$source" "$root/wit" "$here/js/package-lock.json" "$here/build-polyglot.sh"; then
            (cd "$here/js" && build "$name" ./node_modules/.bin/jco componentize "$source" \
                --wit "$root/wit" --world-name greenlight:plugin/check-plugin@0.2.0)
        else
            echo "up to date $out/$name.wasm: $(stat -c %s "$out/$name.wasm") bytes"
        fi
        ;;
    *)
        echo "unknown component \`$name\` (python, js, python-template, js-template)" >&2
        exit 2
        ;;
    esac
done
