# Shared helpers for the scripts: paths, progress lines, errors.
# Sourced, never run.

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# Downloads live outside the repository so a fresh clone reuses them.
CACHE=${ETHOS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ethos-xen}
SCRIPT_START=${SCRIPT_START:-$(date +%s.%N)}
export SCRIPT_START

elapsed() { awk -v s="$SCRIPT_START" -v n="$(date +%s.%N)" 'BEGIN { printf "%6.1fs", n - s }'; }
stage() { printf '[%s] == %s\n' "$(elapsed)" "$*"; }
say() { printf '[%s]    %s\n' "$(elapsed)" "$*"; }
die() { printf '[%s] ERROR: %s\n' "$(elapsed)" "$*" >&2; exit 1; }

APT_UPDATED=
apt_updated_once() {
    if [ -z "$APT_UPDATED" ]; then
        apt-get update -q >/dev/null
        APT_UPDATED=1
    fi
}

# What --help prints: the script's header comment (from its second line up
# to `set -euo pipefail`), which has its `usage:` line. Every script answers
# --help with it at once, before doing anything.
script_help() { sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"; }
# The header's `usage:` line alone, for a bad argument (then exit 2).
usage_line() { sed -n 's/^# \(usage: .*\)/\1/p' "$0" >&2; }
