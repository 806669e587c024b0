# Shared settings for the scripts: where downloads are cached, and the pinned tool versions.
# Source it: `. "$(dirname "$0")/common.sh"`.
set -euo pipefail
IPUFLOW_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export IPUFLOW_ROOT
# Everything fetched from the package registries lives here, never in the repository.
export IPUFLOW_CACHE="${IPUFLOW_CACHE:-$HOME/.cache/ipuflow}"
# A private Python environment for test-data generation and reference runs (never the system Python).
export IPUFLOW_VENV="$IPUFLOW_CACHE/venv"
# Every package of the venv, transitive ones included, pinned with its sha256 hashes (from scripts/requirements.in;
# regenerate as that file says). An unpinned transitive package once changed test results on new machines.
PY_LOCK="$IPUFLOW_ROOT/scripts/requirements.lock"

# The venv is rebuilt from scratch when the lock changes (keyed on the lock's sha256, written last, so a venv whose
# install was interrupted is rebuilt too); pip installs exactly the lock: hashes required, no dependency resolution.
ensure_venv() {
    local key
    key="$(sha256sum "$PY_LOCK" | cut -d' ' -f1)"
    if [ ! -x "$IPUFLOW_VENV/bin/python" ] || [ "$(cat "$IPUFLOW_VENV/.lock-sha256" 2>/dev/null)" != "$key" ]; then
        mkdir -p "$IPUFLOW_CACHE"
        rm -rf "$IPUFLOW_VENV"
        python3 -m venv "$IPUFLOW_VENV"
        "$IPUFLOW_VENV/bin/pip" install --quiet --disable-pip-version-check --require-hashes --no-deps -r "$PY_LOCK"
        echo "$key" > "$IPUFLOW_VENV/.lock-sha256"
    fi
    export PATH="$IPUFLOW_VENV/bin:$PATH"
}

# The Rust toolchain pinned by rust-toolchain.toml, without a download where none is possible. rustup installs a
# missing pinned toolchain on first use, but machines that reach only package registries (CI's) cannot download it;
# they do have the image's toolchain, e.g. `stable` at that very version. So: when rustup lacks `<version>-<host>`,
# an installed toolchain whose rustc is exactly that version (with clippy and rustfmt) is registered under the
# pinned name. `rustup toolchain link` refuses official names like "1.95.0", so this makes the same symlink it
# would. Fails, saying what to run, when no installed toolchain has the version.
ensure_rust_toolchain() {
    local want home host dir
    want="$(sed -n 's/^channel *= *"\(.*\)"/\1/p' "$IPUFLOW_ROOT/rust-toolchain.toml")"
    [ -n "$want" ] || { echo "error: no channel in $IPUFLOW_ROOT/rust-toolchain.toml" >&2; return 1; }
    # RUSTUP_AUTO_INSTALL=0: a probe must not start a download that cannot succeed.
    if [ "$(cd "$IPUFLOW_ROOT" && RUSTUP_AUTO_INSTALL=0 rustc --version 2>/dev/null | cut -d' ' -f2)" = "$want" ]; then
        return 0
    fi
    if command -v rustup >/dev/null 2>&1 && [ -z "${RUSTUP_TOOLCHAIN:-}" ]; then
        home="${RUSTUP_HOME:-$HOME/.rustup}"
        # From /: in the repository rustup show fails on the missing pinned toolchain (after printing the host).
        host="$(cd / && RUSTUP_AUTO_INSTALL=0 rustup show 2>/dev/null | sed -n 's/^Default host: //p' || true)"
        if [ -n "$host" ] && [ ! -e "$home/toolchains/$want-$host" ]; then
            for dir in "$home"/toolchains/*; do
                [ -x "$dir/bin/rustc" ] && [ -x "$dir/bin/cargo-clippy" ] && [ -x "$dir/bin/rustfmt" ] || continue
                if [ "$("$dir/bin/rustc" --version 2>/dev/null | cut -d' ' -f2)" = "$want" ]; then
                    ln -s "$dir" "$home/toolchains/$want-$host" || return 1
                    echo "rust: registered the installed toolchain $(basename "$dir") (rustc $want) as $want-$host" >&2
                    break
                fi
            done
        fi
    fi
    local have
    have="$(cd "$IPUFLOW_ROOT" && RUSTUP_AUTO_INSTALL=0 rustc --version 2>/dev/null || true)"
    if [ "$(echo "$have" | cut -d' ' -f2)" != "$want" ]; then
        echo "error: rust-toolchain.toml pins Rust $want, but rustc here is '${have:-missing}'${RUSTUP_TOOLCHAIN:+ (RUSTUP_TOOLCHAIN=$RUSTUP_TOOLCHAIN overrides the file)}." >&2
        echo "       Install it: rustup toolchain install $want --profile minimal -c rustfmt,clippy" >&2
        return 1
    fi
    echo "rust: $have (pinned by rust-toolchain.toml)" >&2
}
