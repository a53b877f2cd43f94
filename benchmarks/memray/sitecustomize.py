"""What holds a worker's memory at its peak: with this folder on PYTHONPATH and TP_MEMRAY_OUT set, each
`telemetry_pipeline.cli worker` process records its allocations with memray into
`$TP_MEMRAY_OUT.<pid>` (aggregated: only what was live at the high-water mark, a small file).
Other processes (the benchmark itself) are left alone. See benchmarks/README.md, "Where the memory goes".
By default pymalloc's arenas are what memray sees, each charged to the code that made Python ask for
a new one (which is what RSS follows, fragmentation included); with TP_MEMRAY_OBJECTS=1 each Python
object is an allocation of its own (who holds what, without the arenas' slack).
"""

import atexit
import os
import sys

_out = os.environ.get("TP_MEMRAY_OUT")
if _out and "worker" in sys.orig_argv and "telemetry_pipeline.cli" in sys.orig_argv:
    import memray

    _tracker = memray.Tracker(
        f"{_out}.{os.getpid()}", file_format=memray.FileFormat.AGGREGATED_ALLOCATIONS, native_traces=False,
        trace_python_allocators=os.environ.get("TP_MEMRAY_OBJECTS") == "1",
    )
    _tracker.__enter__()
    atexit.register(_tracker.__exit__, None, None, None)
