"""Same seed -> byte-identical stream and ground truth; different seed -> different."""

from __future__ import annotations

from pathlib import Path

from carecircle.common.contract.provisioning import Provisioning
from carecircle.device_sim.engine.files import STREAM_FILE, TRUTH_FILE, generate_files
from carecircle.device_sim.engine.stream import Simulation
from carecircle.device_sim.engine.world import SimConfig, build_world
from carecircle.device_sim.simtime import DAY_MS, parse_time

START = parse_time("2026-01-12T00:00:00+08:00")


def _run(pop: Provisioning, seed: int, out: Path | None) -> tuple[str, str, int]:
    world = build_world(pop, SimConfig(seed=seed, incident_scale=10))
    s = generate_files(Simulation(world, START, START + DAY_MS), out)
    return s.stream_sha256, s.truth_sha256, s.messages


def test_same_seed_gives_byte_identical_files(
    small_population: Provisioning, tmp_path: Path
) -> None:
    a = _run(small_population, 4, tmp_path / "a")
    b = _run(small_population, 4, tmp_path / "b")
    assert a == b
    assert (tmp_path / "a" / STREAM_FILE).read_bytes() == (
        tmp_path / "b" / STREAM_FILE
    ).read_bytes()
    assert (tmp_path / "a" / TRUTH_FILE).read_bytes() == (tmp_path / "b" / TRUTH_FILE).read_bytes()
    assert a[2] > 10_000
    c = _run(small_population, 5, None)
    assert c[0] != a[0] and c[1] != a[1]


def test_stream_is_time_ordered_and_starts_with_retained_availability(
    small_population: Provisioning,
) -> None:
    world = build_world(small_population, SimConfig(seed=1))
    sim = Simulation(world, START + 3600_000, START + 3 * 3600_000)
    msgs = list(sim)
    times = [m[0] for m in msgs]
    assert times == sorted(times)
    assert times[0] == START + 3600_000 and times[-1] < START + 3 * 3600_000
    first = [m for m in msgs if m[0] == times[0]]
    assert all(m[3] for m in first), "the stream opens with retained availability"
    assert sum(1 for m in first if m[1].endswith("/availability")) == world.device_count


def test_priming_the_first_day_does_not_change_the_stream(small_population: Provisioning) -> None:
    world = build_world(small_population, SimConfig(seed=9))
    plain = list(Simulation(world, START + 6 * 3600_000, START + 8 * 3600_000))
    world2 = build_world(small_population, SimConfig(seed=9))
    primed = Simulation(world2, START + 6 * 3600_000, START + 8 * 3600_000)
    primed.prime()
    assert list(primed) == plain


def test_cli_population_and_generate(tmp_path: Path) -> None:
    import json
    import os
    import subprocess
    import sys

    cli = [sys.executable, "-c", "from carecircle.common.cli import run; run()"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("CARECIRCLE_")}
    pop = tmp_path / "population.json"
    out = subprocess.run(
        [
            *cli,
            "sim",
            "population",
            "--households",
            "4",
            "--nursing-homes",
            "1",
            "--seed",
            "3",
            "--out",
            str(pop),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert Provisioning.model_validate_json(pop.read_text()).residents
    gen = subprocess.run(
        [
            *cli,
            "sim",
            "generate",
            "--population",
            str(pop),
            "--seed",
            "3",
            "--days",
            "0.25",
            "--incident-scale",
            "30",
            "--out",
            str(tmp_path / "out"),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert gen.returncode == 0, gen.stderr
    assert "incidents by kind:" in gen.stdout and "  fall " in gen.stdout
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    lines = (tmp_path / "out" / STREAM_FILE).read_text().splitlines()
    assert summary["messages"] == len(lines) > 1000
    assert f"stream sha256 {summary['stream_sha256']}" in gen.stdout
    first = json.loads(lines[0])
    assert set(first) == {"t", "topic", "retain", "payload"}
    bad = subprocess.run(
        [*cli, "sim", "generate", "--population", str(tmp_path / "missing.json")],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert bad.returncode == 2 and "cannot read population file" in bad.stderr


def test_parallel_generation_gives_the_same_bytes(small_population: Provisioning) -> None:
    from carecircle.device_sim.engine.parallel import ParallelSimulation

    config = SimConfig(seed=4, incident_scale=10)
    start, end = START + 20 * 3600_000, START + 30 * 3600_000  # across midnight
    single = generate_files(Simulation(build_world(small_population, config), start, end), None)
    multi = generate_files(ParallelSimulation(small_population, config, start, end, 2), None)
    assert (multi.stream_sha256, multi.truth_sha256, multi.messages) == (
        single.stream_sha256,
        single.truth_sha256,
        single.messages,
    )
