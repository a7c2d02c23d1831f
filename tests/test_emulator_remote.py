"""The emulated venue in a process of its own (bench/bench_trade_latency.py measures against it):
it answers over loopback, logs each request on the machine's monotonic clock, and quotes."""

import json
import time
import urllib.request

from tests.emulator.remote import RemoteVenue


def test_a_venue_in_its_own_process_answers_and_logs_on_the_shared_clock(shared):
    with RemoteVenue("binanceusdm") as emu:
        before = emu.count()
        sent = time.monotonic()
        with urllib.request.urlopen(f"{emu.url}/fapi/v1/time", timeout=30) as answer:
            server_time = json.load(answer)["serverTime"]
        back = time.monotonic()
        (hit,) = emu.hits_from(before)
        assert hit.path == "/fapi/v1/time" and hit.outcome == "ok"
        assert sent <= hit.t <= back  # one clock for both processes: arrival times are ours
        assert server_time > 0 and emu.last() > 0
