# Shared by scripts/demo, scripts/test and scripts/bench: install what is missing, configure and build.
# Sourced, not run.

AQ_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)

# Debian packages each step needs. Build: compiler, CMake and the libraries aquifer links.
AQ_PKGS_BUILD=(build-essential cmake pkg-config libuv1-dev libjemalloc-dev libxxhash-dev xxhash
  libinih-dev libsodium-dev libssl-dev libmicrohttpd-dev zlib1g-dev libzstd-dev libbz2-dev liblzma-dev)
# Tests: Criterion, clang's fuzzer and sanitizer runtimes, the tools the network tests drive, and
# pytest and venv for the Python package's tests.
AQ_PKGS_TEST=(libcriterion-dev clang libclang-rt-14-dev iproute2 iptables procps psmisc python3
  python3-pandas python3-pytest python3-venv curl prometheus chromium gzip zstd bzip2 xz-utils)
# Benchmarks: the peers aquifer is measured against.
AQ_PKGS_BENCH=(iperf3 redis-server redis-tools)

aq_log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
aq_die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# aq_install PKG...: apt-get install the packages that are not installed yet.
aq_install() {
  local missing=() p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep 'install ok installed' >/dev/null || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" -ne 0 ]; then
    echo "These Debian packages are missing: ${missing[*]}" >&2
    echo "Install them as root, then run this again:" >&2
    echo "  sudo apt-get update && sudo apt-get install -y --no-install-recommends ${missing[*]}" >&2
    exit 1
  fi
  aq_log "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq || aq_die "apt-get update failed"
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null ||
    aq_die "apt-get install ${missing[*]} failed"
}

# aq_build DIR [cmake args...]: configure (once) and build into DIR.
aq_build() {
  local dir=$1; shift
  cmake -S "$AQ_ROOT" -B "$dir" "$@" >"$dir.configure.log" 2>&1 ||
    { cat "$dir.configure.log" >&2; aq_die "cmake configure of $dir failed"; }
  cmake --build "$dir" -j "$(nproc)" 2>&1 | grep -Ev '^\[ *[0-9]+%\] (Building|Linking)' ||
    true
  [ "${PIPESTATUS[0]}" -eq 0 ] || aq_die "build of $dir failed"
}
