"""Simulated CPU devices: asked for in time they appear; asked for too late, the error says what to do."""

import json
import subprocess
import sys

import jax
import pytest

from course import devices

FRESH_PROCESS = """
import json, jax
from course import devices
result = {}
if {start_first}:
    jax.numpy.ones(1)  # JAX starts with its default single CPU device
    result["request"] = devices.request_cpu_devices(4)
try:
    found = devices.simulate_cpu_devices(4)
    result.update(devices=len(found), default=jax.devices()[0].platform, count=jax.device_count())
except devices.TooFewDevicesError as error:
    result["error"] = str(error)
print(json.dumps(result))
"""


def run_fresh(start_first: bool) -> dict:
    script = FRESH_PROCESS.replace("{start_first}", str(start_first))
    env = {"PATH": "", "HOME": "/tmp"}  # no JAX_* variables from the test process
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_simulated_devices_before_jax_starts():
    assert run_fresh(start_first=False) == {"devices": 4, "default": "cpu", "count": 4}


def test_simulated_devices_asked_for_too_late():
    result = run_fresh(start_first=True)
    assert result["request"] is False
    assert "already started with 1" in result["error"] and "restart the kernel" in result["error"]


def test_this_test_process_has_the_devices_the_plugin_asked_for():
    devices.check_cpu_devices(devices.SIMULATED_CPU_DEVICES)
    assert devices.request_cpu_devices() is True  # already chosen: nothing to do
    with pytest.raises(devices.TooFewDevicesError, match="needs 1000"):
        devices.check_cpu_devices(1000)
    assert len(devices.simulate_cpu_devices(2)) == 2 and jax.device_count() >= 8
