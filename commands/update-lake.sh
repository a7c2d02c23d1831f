#!/usr/bin/env bash
# Keep the lake fresh: the N busiest USDT perpetuals' candles and funding, then a health check.
# Safe to run as often as you like: fetch resumes from the last stored bar and never duplicates.
#
#   crontab:  */15 * * * *  cd /srv/cryptobot && commands/update-lake.sh >> logs/fetch.jsonl 2>> logs/fetch.err
#
# Tunables (environment): TOP (30), TIMEFRAMES (5m,15m), DAYS of history for new symbols (30),
# CRYPTOBOT (the executable). Exit status is non-zero when a series failed or the lake holds bad
# rows, so cron's mail or your monitor sees it.
set -euo pipefail
CRYPTOBOT=${CRYPTOBOT:-cryptobot}

"$CRYPTOBOT" -q fetch --top "${TOP:-30}" --timeframes "${TIMEFRAMES:-5m,15m}" \
  --days "${DAYS:-30}" --funding --format jsonl

# any stored series with hard problems (NaN, bad prices, off-grid times) fails the run
bad=$("$CRYPTOBOT" -q fetch --status --format jsonl | grep -v '"problems": null' || true)
if [ -n "$bad" ]; then
  echo "lake has invalid rows:" >&2
  echo "$bad" >&2
  exit 1
fi
