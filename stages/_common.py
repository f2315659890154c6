"""What every stage does around its work: parse ``--params``, validate, log, turn known errors
into one clear line and a non-zero exit code instead of a traceback."""
from __future__ import annotations

import argparse
import contextlib
import logging
import resource
import signal
import sys
import time
from typing import Callable

from avs_core.config import ParamError, Params, load_params
from avs_core.data.records import DataError
from avs_core.runtime import DivergedError, NotLearnedError, seed_everything, setup_logging
from avs_core.store import StoreError, atomic_dir, clear_interrupt, record_interrupt, was_interrupted

EXIT_BAD_INPUT = 2
EXIT_NOT_LEARNED = 3


def peak_rss_mib() -> float:
    """Peak resident memory of this process or of its largest finished child (CRF workers), MiB."""
    return max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
               resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss) / 1024


def run_stage(name: str, work: Callable[[Params], None], argv: list[str] | None = None,
              uses_torch: bool = True) -> int:
    """Run ``work(params)`` as stage ``name``: the exit code is 0, or 2 for bad input, 3 for a
    stage that learned nothing (``base.on_chance=error``), 130 when interrupted. ``uses_torch=False``
    keeps torch out of the process (it is then neither imported nor seeded)."""
    parser = argparse.ArgumentParser(prog=f"python -m stages.{name}", description=f"DVC stage '{name}'")
    parser.add_argument("--params", default="params.yaml", help="params file (default: params.yaml)")
    args = parser.parse_args(argv)
    setup_logging()
    # SIGTERM (dvc queue kill, a scheduler) unwinds like Ctrl-C, so temp outputs are removed; both
    # are recorded, so an interrupt swallowed inside a finaliser still keeps outputs out of place
    clear_interrupt()
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    for sig, old in handlers.items():
        if old is not signal.SIG_IGN:  # a shell starts background jobs with SIGINT ignored: keep that
            signal.signal(sig, record_interrupt)
    log = logging.getLogger(f"stages.{name}")
    try:
        params = load_params(args.params)
        seed_everything(params.base.seed, with_torch=uses_torch)
        t0 = time.perf_counter()
        work(params)
        if was_interrupted():
            raise KeyboardInterrupt
        log.info("done in %.1f s, peak RSS %.0f MiB", time.perf_counter() - t0, peak_rss_mib())
        return 0
    except (ParamError, DataError, StoreError, DivergedError) as exc:
        log.error("%s", exc)
        return EXIT_BAD_INPUT
    except NotLearnedError as exc:
        log.error("%s", exc)
        return EXIT_NOT_LEARNED
    except OSError as exc:  # disk full, read-only output folder, ...
        log.error("I/O error: %s%s", exc.strerror or exc, f": {exc.filename}" if exc.filename else "")
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        log.error("interrupted; no partial output was kept")
        return 130
    finally:
        for sig, old in handlers.items():  # a stage run in-process (tests) leaves the caller as it was
            signal.signal(sig, signal.SIG_DFL if old is None else old)
        clear_interrupt()
        torch = sys.modules.get("torch")  # never imported: no process group to close
        if torch is not None and torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()


def main_only_dir(path, dist):
    """``atomic_dir(path)`` on the main process; ``None`` elsewhere (only rank 0 writes outputs)."""
    return atomic_dir(path) if dist.is_main else contextlib.nullcontext()

