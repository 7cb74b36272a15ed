"""dask.distributed: connecting to a scheduler, failing fast and clearly when it cannot be reached.

Trust: dask ships pickled tasks and results between the client and the workers, so connect only to
a cluster you control (the tasks run your code, and results read back run pickle.loads).
"""

from __future__ import annotations

from typing import Any

#: Seconds :func:`connect` waits for a dask scheduler before giving up.
CONNECT_TIMEOUT_S = 5.0


class SchedulerUnavailable(ConnectionError):
    """The dask scheduler address given could not be reached (or dask is not installed)."""


def connect(scheduler: Any, *, timeout: float = CONNECT_TIMEOUT_S) -> Any:
    """A ``distributed.Client`` for ``scheduler`` (an address such as ``"tcp://host:8786"``).

    scheduler: the scheduler's address, or an existing ``distributed.Client`` (returned as is).
    timeout: seconds to wait for the scheduler.
    Raises :class:`SchedulerUnavailable` (a ``ConnectionError``) with a one-line message when
    the address cannot be reached within ``timeout`` seconds or dask is not installed.
    """
    if not isinstance(scheduler, str):
        if hasattr(scheduler, "submit") and hasattr(scheduler, "scheduler_info"):
            return scheduler
        raise ValueError(
            f"connect: argument 'scheduler' must be an address string or a distributed.Client; "
            f"got {type(scheduler).__name__}."
        )
    if not scheduler.strip():
        raise ValueError("connect: argument 'scheduler' must be a non-empty address; got ''.")
    try:
        from distributed import Client
    except ImportError:
        raise SchedulerUnavailable(
            "dask.distributed is not installed; install the optional extra: "
            "pip install 'concurrence[distributed]'"
        ) from None
    try:
        # a plain socket first: a Client that fails to connect lingers and stalls interpreter exit
        _preflight(scheduler, timeout)
        return Client(scheduler, timeout=f"{timeout}s", set_as_default=False)
    except Exception as e:  # OSError (timeout / refused), ValueError (bad address), ...
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise SchedulerUnavailable(
            f"could not reach the dask scheduler at {scheduler!r} ({msg}); start one with "
            f"`dask scheduler` and `dask worker ADDR --nthreads 1`, or leave out the scheduler"
        ) from None


def _preflight(address: str, timeout: float) -> None:
    """Fail fast, without a ``Client``, unless ``address`` answers as a dask scheduler.

    A ``Client`` whose connection fails is left half-built and stalls interpreter exit for
    another 10 s; so the address is parsed, connected to and asked for its identity first.
    """
    import asyncio

    from distributed.comm import connect as comm_connect
    from distributed.comm import get_address_host_port, parse_address

    scheme, _ = parse_address(address)
    if scheme in ("tcp", "tls"):
        get_address_host_port(address)  # ValueError on a missing port
    try:
        asyncio.get_running_loop()
        return  # inside an event loop (a notebook): leave the checks to Client
    except RuntimeError:
        pass

    async def identity() -> dict:
        comm = await comm_connect(address, timeout=timeout)
        try:
            await asyncio.wait_for(comm.write({"op": "identity", "reply": True}), timeout)
            return await asyncio.wait_for(comm.read(), timeout)
        finally:
            comm.abort()

    try:
        reply = asyncio.run(identity())
    except asyncio.TimeoutError:
        raise OSError(f"no answer within {timeout:g} s") from None
    except OSError:
        raise
    except Exception:  # something answered, but not in dask's protocol
        reply = None
    if not isinstance(reply, dict) or reply.get("type") != "Scheduler":
        raise OSError("the address does not answer as a dask scheduler")
