#!/usr/bin/env bash
# Accumulate crowd data and record liquidations. Binance keeps only 30 days of open interest,
# long/short ratios and taker volume, so the lake keeps what the venue forgets as long as this
# runs at least every few weeks; hourly costs one request per series. Each run also records the
# liquidation stream for LIQUIDATIONS_FOR seconds (an hour and a minute by default), so an hourly
# cron job rotates the recorder: the next run's recorder starts before this one stops, and the
# liquidations both saw are stored once. Counts are a lower bound (one per symbol per second).
#
#   crontab:  0 * * * *  cd /srv/cryptobot && commands/update-crowd.sh >> logs/crowd.jsonl 2>> logs/crowd.err
#
# Tunables (environment): SYMBOLS (BTC/USDT:USDT,ETH/USDT:USDT), DAYS of history to ask for the
# first time (30; Fear & Greed keeps years: DAYS=3000 fetches them all), LIQUIDATIONS_FOR
# (3660 seconds), CRYPTOBOT (the executable). Exit status is non-zero when a series or the
# recorder failed; `commands/update-lake.sh` checks the stored series for bad rows.
set -euo pipefail
CRYPTOBOT=${CRYPTOBOT:-cryptobot}

"$CRYPTOBOT" -q fetch --liquidations --watch --for "${LIQUIDATIONS_FOR:-3660}" --format jsonl &
recorder=$!
trap 'kill -TERM "$recorder" 2>/dev/null || true' INT TERM  # the recorder stores what it has

status=0
"$CRYPTOBOT" -q fetch --crowd --symbols "${SYMBOLS:-BTC/USDT:USDT,ETH/USDT:USDT}" \
  --days "${DAYS:-30}" --format jsonl || status=$?
wait "$recorder" || status=$?
exit "$status"
