# %%
import ctypes
import os
import signal
import time

import jax
import jax.numpy as jnp

# Right code that also leaves a process behind: a double-forked child that ignores the
# usual signals and holds every file descriptor open (the grader must neither wait for it
# nor leave it running).
if os.fork() == 0:
    if os.fork() == 0:
        os.setsid()
        ctypes.CDLL(None).prctl(15, b"lingering-child", 0, 0, 0)  # PR_SET_NAME, to find it in /proc
        for signum in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
            signal.signal(signum, signal.SIG_IGN)
        time.sleep(600)
    os._exit(0)


# %%
def mixture_score(mixture, x):
    return jax.grad(mixture.log_prob)(x)


# %%
def langevin_step(score_fn, x, key, step_size):
    noise = jax.random.normal(key, x.shape)
    return x + step_size * score_fn(x) + jnp.sqrt(2.0 * step_size) * noise


# %%
def langevin_sampler(score_fn, x0, key, step_size, num_steps):
    def step(x, step_key):
        x = langevin_step(score_fn, x, step_key, step_size)
        return x, x

    _, trajectory = jax.lax.scan(step, x0, jax.random.split(key, num_steps))
    return trajectory
