#!/usr/bin/env bash
# Render a run folder's report.html in headless Chromium, offline, and save a screenshot to look at.
#
#   scripts/check_report.sh RUN_DIR [SCREENSHOT.png]
#
# Checks that the page renders with every name lookup blocked (the report must be self-contained:
# inline CSS, figures as base64 PNG), that the rendered DOM names the winner and holds the
# figures, and writes RUN_DIR/report-screenshot.png (full page, 1200 px wide). Look at the
# screenshot: the winner card, the elimination path, the distributions and the tables should all
# be there. Installs Debian's chromium with apt-get when no Chromium is found (root only).
# Not part of the test suite (it needs a browser); run it after changing jrobust/results.py.
set -euo pipefail

dir="${1:?usage: scripts/check_report.sh RUN_DIR [SCREENSHOT.png]}"
report="$dir/report.html"
[ -f "$report" ] || { echo "check_report: no $report (run: jrobust report $dir)" >&2; exit 2; }
shot="${2:-$dir/report-screenshot.png}"

browser="$(command -v chromium || command -v chromium-browser || command -v google-chrome || true)"
if [ -z "$browser" ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "check_report: installing chromium with apt-get ..." >&2
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
    browser="$(command -v chromium)"
  else
    echo "check_report: no Chromium found; install it (Debian: apt-get install chromium)" >&2
    exit 2
  fi
fi

url="file://$(realpath "$report")"
profile="$(mktemp -d)"
trap 'rm -rf "$profile"' EXIT
flags=(--headless --no-sandbox --disable-gpu --disable-dev-shm-usage --hide-scrollbars
       --user-data-dir="$profile" --host-resolver-rules="MAP * ~NOTFOUND"
       --no-first-run --disable-extensions --virtual-time-budget=5000)

# 1. the rendered DOM: the winner's name and every figure must be there
dom="$("$browser" "${flags[@]}" --dump-dom "$url" 2>/dev/null)"
winner="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["winner_name"])' "$dir/result.json")"
grep -qF "$winner" <<<"$dom" || { echo "check_report: the rendered page does not name the winner '$winner'" >&2; exit 1; }
figures="$(grep -o 'data:image/png;base64' <<<"$dom" | wc -l)"
[ "$figures" -ge 2 ] || { echo "check_report: only $figures embedded figures in the rendered page" >&2; exit 1; }
if grep -qE '(src|href)="(https?:)?//' <<<"$dom"; then
  echo "check_report: the page refers to the network" >&2; exit 1
fi

# 2. the screenshot (a tall window: the whole report in one image)
"$browser" "${flags[@]}" --window-size=1200,3200 --screenshot="$shot" "$url" 2>/dev/null
[ -s "$shot" ] || { echo "check_report: no screenshot written" >&2; exit 1; }
echo "check_report: OK: winner '$winner', $figures figures; screenshot $shot"
