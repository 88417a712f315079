"""Live publishing rate of the device simulator against the local Mosquitto.

    .venv/bin/python bench/sim_live_rate.py --households 850 --seconds 30 --speed 1
    .venv/bin/python bench/sim_live_rate.py --households 850 --seconds 30 --speed 60

Builds a population of about 10,000 devices, runs ``carecircle sim run``'s pacer for
``--seconds`` of wall time after the first day has been rendered, counts what a
subscriber receives back from the broker, and prints one JSON line.  Topics are under
a fresh ``bench-…`` root; retained availability is cleared afterwards.
"""

from __future__ import annotations

import argparse
import json
import queue
import threading
import time
import uuid

from carecircle.common.clock import utcnow
from carecircle.device_sim.devices.formats import TopicBases
from carecircle.device_sim.engine.stream import Simulation
from carecircle.device_sim.engine.world import SimConfig, build_world
from carecircle.device_sim.live.edge import close, connect, run_live
from carecircle.device_sim.live.publisher import Stats
from carecircle.device_sim.population.generate import PopulationParams, generate_population
from carecircle.device_sim.simtime import to_ms


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--households", type=int, default=850)
    ap.add_argument("--day-care", type=int, default=3)
    ap.add_argument("--nursing-homes", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=30)
    ap.add_argument("--speed", type=float, default=1.0)
    ap.add_argument("--mqtt-url", default="mqtt://127.0.0.1:1883")
    args = ap.parse_args()
    root = f"bench-{uuid.uuid4().hex[:8]}"
    bases = TopicBases(f"{root}/zigbee2mqtt", f"{root}/careband", f"{root}/bedsensor", root)
    pop = generate_population(
        PopulationParams(args.households, args.day_care, args.nursing_homes, seed=1)
    )
    world = build_world(pop, SimConfig(seed=1, bases=bases))
    t0 = time.monotonic()
    sim = Simulation(world, to_ms(utcnow()), None)
    sim.prime()  # render day 0 of every site before timing
    render_s = time.monotonic() - t0

    received = [0]
    lock = threading.Lock()
    seen: queue.Queue[str] = queue.Queue()

    def on_message(topic: str, payload: bytes) -> None:
        with lock:
            received[0] += 1
        if topic.endswith("/availability") or topic.endswith("/bridge/state"):
            seen.put(topic)

    sub = connect(args.mqtt_url, f"{root}-sub", subscribe=[f"{root}/#"], on_message=on_message)
    samples: list[tuple[float, int]] = []

    def report(st: Stats) -> None:
        samples.append((time.monotonic(), st.published))

    stats = run_live(
        sim,
        args.mqtt_url,
        bases,
        speed=args.speed,
        stop=threading.Event(),
        duration_s=args.seconds + 5,
        listen=False,
        report=report,
    )
    # Steady state: leave out the first 5 s (the retained availability of every device).
    t_first, n_first = next((t, n) for t, n in samples if t - samples[0][0] >= 3)
    t_last, n_last = samples[-1]
    steady = (n_last - n_first) / (t_last - t_first)
    time.sleep(2)
    close(sub)
    retained = set()
    while not seen.empty():
        retained.add(seen.get())
    cleaner = connect(args.mqtt_url, f"{root}-clean")
    for topic in retained:
        cleaner.publish(topic, b"", qos=1, retain=True)
    time.sleep(1)
    close(cleaner)
    print(
        json.dumps(
            {
                "devices": world.device_count,
                "sites": len(world.sites),
                "speed": args.speed,
                "wall_seconds": args.seconds,
                "first_day_render_s": round(render_s, 1),
                "published": stats.published,
                "announced_at_start": sum(len(s.devices) + 1 for s in world.sites),
                "steady_publish_rate_per_s": round(steady, 1),
                "steady_window_s": round(t_last - t_first, 1),
                "received_by_subscriber": received[0],
                "incidents_labelled": stats.incidents,
            }
        )
    )


if __name__ == "__main__":
    main()
