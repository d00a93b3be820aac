#!/usr/bin/env bash
# Installs lightchain on this machine: checks the Rust toolchain and the C compiler the build
# needs, then builds and installs the `lightchain` binary into ~/.cargo/bin. Safe to run again:
# an unchanged tree is not rebuilt.
set -euo pipefail
cd "$(dirname "$0")"

say() { printf 'install.sh: %s\n' "$*" >&2; }

if ! command -v cargo >/dev/null 2>&1; then
  if [ -x "$HOME/.cargo/bin/cargo" ]; then
    export PATH="$HOME/.cargo/bin:$PATH"
  elif command -v curl >/dev/null 2>&1; then
    say "installing the Rust toolchain with rustup"
    curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal
    export PATH="$HOME/.cargo/bin:$PATH"
  else
    say "cargo is missing and curl is not available: install Rust (https://rustup.rs) and run again"
    exit 1
  fi
fi

need_version=1.95
have_version=$(rustc --version | awk '{print $2}')
if [ "$(printf '%s\n%s\n' "$need_version" "$have_version" | sort -V | head -n1)" != "$need_version" ]; then
  say "rustc $have_version is older than $need_version; run 'rustup update' and try again"
  exit 1
fi

if ! command -v cc >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    say "installing a C compiler (build-essential)"
    apt-get update -qq && apt-get install -y -qq build-essential >/dev/null
  else
    say "a C compiler (cc) is needed to build some dependencies; install gcc and run again"
    exit 1
  fi
fi

# Share build outputs with CI and the tests when they run on this machine.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/lightchain/target}"
say "building lightchain (release; a cold build takes several minutes)"
cargo install --locked --quiet --path cli --root "$HOME/.cargo"

case ":$PATH:" in
  *":$HOME/.cargo/bin:"*) ;;
  *) say "add $HOME/.cargo/bin to your PATH (e.g. 'source \$HOME/.cargo/env')" ;;
esac
say "installed $("$HOME/.cargo/bin/lightchain" --version)"
