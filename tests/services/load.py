"""Wall-clock bounds for promises a test keeps on a shared, loaded machine.

A promise such as "the run exits within 2 s of Ctrl-C" is CPU work plus waiting for a CPU.
On the 2-core machines that run this suite, other processes (the rest of the suite, other
jobs) can keep every CPU busy for seconds: the same work then takes longer by about how
many runnable processes share each CPU. :func:`load_scaled` stretches the quiet-machine
bound by that factor (the 1-minute load average per CPU, never below 1), and caps it so a
real hang still fails.
"""

from __future__ import annotations

import os


def load_scaled(quiet_limit: float, most: float) -> float:
    """``quiet_limit`` seconds, stretched by how overloaded the CPUs are right now (at load
    30-40 on 2 cores a 2 s exit took 2.4-3.4 s, once over 20 s, all of it waiting for a
    CPU), never beyond ``most``."""
    overload = os.getloadavg()[0] / (os.cpu_count() or 1)
    return min(most, quiet_limit * max(1.0, overload))
