"""Peak memory of a fresh test subprocess, for scripts run with `sys.executable -c`.

`resource.getrusage(...).ru_maxrss` survives fork and exec on Linux: a child started by a pytest process
that already holds gigabytes reports that as its own peak, and a measured rise comes out 0 (seen when the
slow peer tests ran in one session). `VmHWM` in /proc/self/status belongs to the new process's own memory
map, so it starts fresh. Prepend `PEAK_KIB` to a script; it defines `peak_kib()`.
"""

PEAK_KIB = r"""
def peak_kib():
    try:
        with open("/proc/self/status") as status:
            return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
    except (OSError, StopIteration):
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
"""
