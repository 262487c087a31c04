# Shared by the .ci scripts (source it).

# pip_venv NAME SPEC: a virtual environment .ci/.venv-NAME holding the
# pinned package SPEC (e.g. "PyYAML==6.0.2"), made once and remade only when
# the pin changes. Prints the environment's path.
pip_venv() {
    local venv stamp
    venv="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/.venv-$1"
    stamp="$venv/.installed-$2"
    if [ ! -f "$stamp" ]; then
        echo "== installing $2 into .ci/.venv-$1" >&2
        rm -rf "$venv"
        python3 -m venv "$venv"
        "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "$2" >&2
        touch "$stamp"
    fi
    echo "$venv"
}
