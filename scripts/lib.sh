# shellcheck shell=bash disable=SC2034 # its variables are used by the scripts that source it
# Shared setup for scripts/run, scripts/test and scripts/build-extension.
# Sourced, never run. Everything here is idempotent: a second call checks
# and changes nothing.
#
# What it provides:
#   PW_ROOT              absolute repo root
#   PW_TARGET_DIR        cargo's target dir (respects CARGO_TARGET_DIR)
#   PW_WASM_TARGET_DIR   target dir of the wasm32 builds ($PW_TARGET_DIR/wasm)
#   PW_NODE_DIR          scripts/node (package.json of the node tools)
#   PW_DIST_EXTENSION    dist/extension, the unpacked extension
#   pw_setup run|test    install what that job lacks (see below)
#   pw_wasm_cargo SUB .. cargo SUB for wasm32 on the chosen toolchain route
#   pw_say / pw_die      messages (one line, no stack trace)

set -euo pipefail

PW_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# cargo reads a relative CARGO_TARGET_DIR against its working directory;
# the scripts always work from the repo root, so anchor it there.
PW_TARGET_DIR=${CARGO_TARGET_DIR:-$PW_ROOT/target}
case $PW_TARGET_DIR in
/*) ;;
*) PW_TARGET_DIR=$PW_ROOT/$PW_TARGET_DIR ;;
esac
export CARGO_TARGET_DIR=$PW_TARGET_DIR
PW_WASM_TARGET_DIR=$PW_TARGET_DIR/wasm
PW_NODE_DIR=$PW_ROOT/scripts/node
PW_DIST_EXTENSION=$PW_ROOT/dist/extension
PW_WASM_TARGET=wasm32-unknown-unknown
# Debian's toolchain route (TOOLCHAIN.md): Debian's Rust with std sources,
# build-std, and rust-lld from lld-22.
PW_DEBIAN_RUST_PACKAGES="rustc-web cargo-web rust-web-src lld-22"

# cargo install puts wasm-bindgen here; make sure we find what we install.
PW_CARGO_BIN=${CARGO_HOME:-$HOME/.cargo}/bin
case ":$PATH:" in
*":$PW_CARGO_BIN:"*) ;;
*) export PATH="$PW_CARGO_BIN:$PATH" ;;
esac

cd "$PW_ROOT"

pw_say() { printf 'pricewatch: %s\n' "$*" >&2; }
pw_die() {
	printf 'pricewatch: error: %s\n' "$*" >&2
	exit 1
}

# --- Debian packages ------------------------------------------------------

# Prints the packages among "$@" that are not installed.
pw_missing_debs() {
	local p
	for p in "$@"; do
		if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
			printf '%s\n' "$p"
		fi
	done
}

# Installs the missing packages among "$@" in one apt transaction, running
# `apt-get update` only when something must be installed. Not root: one
# message saying what to run, and exit 1.
pw_apt_install() {
	command -v dpkg-query >/dev/null 2>&1 ||
		pw_die "this setup expects Debian (dpkg and apt-get); install by hand: $*"
	local missing
	missing=$(pw_missing_debs "$@" | tr '\n' ' ')
	missing=${missing% }
	[ -z "$missing" ] && return 0
	if [ "$(id -u)" -ne 0 ]; then
		pw_die "missing Debian packages: $missing. As root, run: apt-get update && apt-get install -y $missing   (for example with sudo), then run this command again."
	fi
	pw_say "installing Debian packages: $missing"
	apt-get update -qq || pw_die "apt-get update failed"
	# shellcheck disable=SC2086 # word splitting of the package list is intended
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null ||
		pw_die "apt-get install -y $missing failed"
}

# --- wasm32 toolchain route ------------------------------------------------

# Decides how wasm32 is built and exports PW_WASM_ROUTE=rustup|debian.
# Prefers rustup's target (a normal developer machine); falls back to
# Debian's Rust with build-std where rustup cannot add it. The fallback is
# remembered in the wasm target dir so that later runs do not retry a
# download that failed (a target added by hand later still wins, as the
# installed-target check comes first). PRICEWATCH_WASM_ROUTE forces one.
pw_choose_wasm_route() {
	local memo=$PW_WASM_TARGET_DIR/.pricewatch-wasm-route
	if [ -n "${PRICEWATCH_WASM_ROUTE:-}" ]; then
		case $PRICEWATCH_WASM_ROUTE in
		rustup | debian) PW_WASM_ROUTE=$PRICEWATCH_WASM_ROUTE ;;
		*) pw_die "PRICEWATCH_WASM_ROUTE must be 'rustup' or 'debian', not '$PRICEWATCH_WASM_ROUTE'" ;;
		esac
	elif command -v rustup >/dev/null 2>&1 &&
		rustup target list --installed 2>/dev/null | grep -qx "$PW_WASM_TARGET"; then
		PW_WASM_ROUTE=rustup
	elif [ "$(cat "$memo" 2>/dev/null)" = debian ]; then
		PW_WASM_ROUTE=debian
	elif command -v rustup >/dev/null 2>&1 &&
		pw_say "adding the $PW_WASM_TARGET target with rustup" &&
		timeout 300 rustup target add "$PW_WASM_TARGET" >/dev/null 2>&1; then
		PW_WASM_ROUTE=rustup
	else
		pw_say "rustup cannot add $PW_WASM_TARGET here; using Debian's Rust with build-std"
		PW_WASM_ROUTE=debian
		mkdir -p "$PW_WASM_TARGET_DIR"
		echo debian >"$memo"
	fi
	export PW_WASM_ROUTE
}

# pw_wasm_cargo SUBCOMMAND ARGS...: cargo for wasm32 on the chosen route,
# building into $PW_WASM_TARGET_DIR (never shared with native artefacts).
pw_wasm_cargo() {
	local sub=$1
	shift
	if [ "$PW_WASM_ROUTE" = rustup ]; then
		CARGO_TARGET_DIR=$PW_WASM_TARGET_DIR cargo "$sub" --target "$PW_WASM_TARGET" "$@"
	else
		# /usr/bin first so that `cargo clippy` finds Debian's cargo-clippy
		# and clippy-driver, not rustup's proxies.
		PATH="/usr/bin:$PATH" CARGO=/usr/bin/cargo RUSTC=/usr/bin/rustc RUSTC_BOOTSTRAP=1 \
			CARGO_TARGET_DIR=$PW_WASM_TARGET_DIR \
			/usr/bin/cargo "$sub" --target "$PW_WASM_TARGET" -Zbuild-std=std,panic_abort "$@"
	fi
}

# --- wasm-bindgen CLI and node tools ----------------------------------------

# The CLI must equal the crate exactly; the crate's pin in the root
# Cargo.toml is the one source of that version.
pw_wasm_bindgen_version() {
	sed -n 's/^wasm-bindgen *= *"=\([0-9][0-9.]*\)".*/\1/p' "$PW_ROOT/Cargo.toml"
}

pw_setup_wasm_bindgen() {
	local want have
	want=$(pw_wasm_bindgen_version)
	[ -n "$want" ] || pw_die "root Cargo.toml must pin wasm-bindgen exactly (wasm-bindgen = \"=X.Y.Z\")"
	have=$(wasm-bindgen --version 2>/dev/null | awk '{print $2}') || true
	if [ "$have" != "$want" ]; then
		pw_say "installing wasm-bindgen-cli $want (cargo install, a few minutes)"
		# No --locked: one locked dependency is missing from the registry
		# mirror here (TOOLCHAIN.md).
		cargo install --quiet wasm-bindgen-cli --version "$want" ||
			pw_die "cargo install wasm-bindgen-cli --version $want failed"
	fi
}

# npm packages (binaryen's wasm-opt, playwright-core) from the lockfile into
# scripts/node/node_modules, reinstalled only when the lockfile changed.
pw_setup_node_tools() {
	local stamp=$PW_NODE_DIR/node_modules/.pricewatch-installed
	if [ -x "$PW_NODE_DIR/node_modules/.bin/wasm-opt" ] &&
		[ -d "$PW_NODE_DIR/node_modules/playwright-core" ] &&
		[ -f "$stamp" ] && [ ! "$PW_NODE_DIR/package-lock.json" -nt "$stamp" ]; then
		return 0
	fi
	pw_say "installing node tools (npm ci in scripts/node)"
	(cd "$PW_NODE_DIR" && npm ci --no-audit --no-fund --loglevel=error >/dev/null) ||
		pw_die "npm ci in scripts/node failed"
	touch "$stamp"
}

pw_node_major() {
	node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0
}

# --- the whole setup ---------------------------------------------------------

# pw_setup run|test|build: installs what the job lacks.
#   build: wasm32 route, wasm-bindgen CLI, node tools (extension build)
#   run:   the same (the backend builds with the native toolchain)
#   test:  the same plus Chromium, chromium-driver, PostgreSQL, shellcheck,
#          and Debian's clippy when wasm32 goes the Debian route
# Exports PW_SETUP_DONE so nested scripts skip it.
pw_setup() {
	local job=$1
	# build and run need the same; test needs more.
	if [ -n "${PW_SETUP_DONE:-}" ] && { [ "$job" != test ] || [ "$PW_SETUP_DONE" = test ]; }; then
		return 0
	fi
	command -v cargo >/dev/null 2>&1 ||
		pw_die "cargo not found. Install Rust with rustup (https://rustup.rs), then run this again."

	local debs=()
	# Node.js 20+ (playwright-core needs 20; Debian 12's own is 18).
	if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
		debs+=(nodejs npm)
	fi
	pw_choose_wasm_route
	if [ "$PW_WASM_ROUTE" = debian ]; then
		# shellcheck disable=SC2206 # the list is a constant of plain words
		debs+=($PW_DEBIAN_RUST_PACKAGES)
		[ "$job" = test ] && debs+=(rust-web-clippy)
	fi
	if [ "$job" = test ]; then
		debs+=(chromium chromium-driver postgresql shellcheck)
	fi
	pw_apt_install "${debs[@]}"
	if [ "$(pw_node_major)" -lt 20 ]; then
		pw_die "Node.js 20 or newer is needed (found $(node --version 2>/dev/null || echo none)); install it and run this again."
	fi
	pw_setup_wasm_bindgen
	pw_setup_node_tools
	PW_SETUP_DONE=$job
	export PW_SETUP_DONE
}
