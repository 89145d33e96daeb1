"""Several JAX devices on one CPU, so that sharded programs run on a laptop.

JAX can split the host CPU into simulated devices. Meshes, `NamedSharding` and
`jax.shard_map` then behave as on a machine with that many accelerators (slower, since
the devices share the CPU's cores), which is how the `scaling` track runs anywhere.
JAX fixes its devices when it first computes something: ask for them before that.
"""

import jax

SIMULATED_CPU_DEVICES = 8  # what the scaling track uses


class TooFewDevicesError(RuntimeError):
    """JAX started with fewer devices than a program needs; the message says what to do."""


def request_cpu_devices(count: int = SIMULATED_CPU_DEVICES) -> bool:
    """Ask JAX for `count` CPU devices if it has not started yet; whether the request was in time.

    Never fails and never starts JAX: the grader's test processes call it on start-up, so
    that the scaling track's tests find their devices whatever ran before them. A count
    chosen by the user (`JAX_NUM_CPU_DEVICES`) is kept.
    """
    if jax.config.jax_num_cpu_devices >= 0:  # chosen already, by the user or an earlier call
        return True
    try:
        jax.config.update("jax_num_cpu_devices", count)
    except RuntimeError:  # JAX has started: its devices are fixed
        return False
    return True


def simulate_cpu_devices(count: int = SIMULATED_CPU_DEVICES) -> list[jax.Device]:
    """Split the CPU into `count` JAX devices and make the CPU JAX's default platform; return them.

    Call it right after `import jax`, before any JAX computation. Called later (again, or
    after JAX has started), it only checks that there are enough CPU devices, and raises
    `TooFewDevicesError` saying what to do if not. A platform chosen by the user
    (`JAX_PLATFORMS`) is kept.
    """
    if jax.config.jax_num_cpu_devices < count:
        try:
            jax.config.update("jax_num_cpu_devices", count)
            if not jax.config.jax_platforms:  # JAX has not started (else the line above raised)
                jax.config.update("jax_platforms", "cpu")
        except RuntimeError:
            pass  # JAX has started; check what it has
    check_cpu_devices(count)
    return jax.devices("cpu")[:count]


def check_cpu_devices(count: int = SIMULATED_CPU_DEVICES) -> None:
    """Raise `TooFewDevicesError`, with what to do, unless JAX has at least `count` CPU devices."""
    found = len(jax.devices("cpu"))
    if found < count:
        raise TooFewDevicesError(
            f"This needs {count} (simulated) CPU devices, but JAX has already started with {found}: "
            "it fixes its devices at the first computation. In a notebook, restart the kernel and run "
            f"`course.devices.simulate_cpu_devices({count})` right after `import jax`, before anything "
            f"else. For tests, run the track in a process of its own (`uv run pytest exercises/scaling`), "
            f"or set JAX_NUM_CPU_DEVICES={count} in the environment."
        )
