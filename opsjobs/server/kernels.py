"""A dashboard kernel belongs to the user whose page started it.

Voila starts one kernel per page it renders, and the page then talks to it through
jupyter_server's kernel routes (``/api/kernels/<id>``, its ``/channels`` websocket) and asks
Voila's ``/voila/api/shutdown/<id>`` to stop it when the page goes. Neither knows whose kernel
it is: any signed-in key holder who learned a kernel id could open its websocket (and press the
widget buttons of someone else's dashboard, deletes included) or stop it.

So :class:`KernelOwners` records the owner of every kernel started for a signed-in page: the
dashboard's prelaunch hook names the user (:func:`starting_for`, in the render request's task,
just before Voila calls ``start_kernel`` in that same task), and a wrapper around the kernel
manager's ``start_kernel`` files the new kernel under that name.
:class:`~opsjobs.server.identity.OpsJobsAuthorizer` lets only the owner reach a kernel, and
:func:`opsjobs.server.voila.own_kernels` swaps Voila's shutdown handler for one that checks the
owner too.
"""

from __future__ import annotations

import os
import threading
import weakref
from contextvars import ContextVar
from typing import Any

from jupyter_core.utils import ensure_async
from jupyter_server.base.handlers import APIHandler
from tornado import web

__all__ = ["SETTING", "KernelOwners", "OwnedShutdownHandler", "starting_for"]

#: The web app setting that holds the server's :class:`KernelOwners`.
SETTING = "opsjobs_kernel_owners"

_STARTING_FOR: ContextVar[str | None] = ContextVar("opsjobs_kernel_owner", default=None)
#: A JupyterLab kernel's extra environment (its user's store scope, see opsjobs.server.lab).
_LAB_ENV: ContextVar[dict[str, str] | None] = ContextVar("opsjobs_lab_env", default=None)


def starting_for(user_id: str, lab_env: dict[str, str] | None = None) -> None:
    """Name the owner of the kernel this request is about to start (``lab_env``: a
    JupyterLab kernel, with these variables over the server's)."""
    _STARTING_FOR.set(user_id)
    _LAB_ENV.set(lab_env)


class KernelOwners:
    """Kernel id → opsjobs user id, for the kernels started for signed-in pages."""

    def __init__(self, kernel_manager: Any, env: dict[str, str] | None = None) -> None:
        # Weak references only: a cycle through the kernel manager would leave it to the
        # cyclic garbage collector, whose run of its __del__ (zmq Context.term) can block
        # whichever thread it happens on.
        self._km = weakref.ref(kernel_manager)
        self._owners: dict[str, str] = {}
        self._lab: set[str] = set()  # JupyterLab kernels: any message, not only comms
        self._lock = threading.Lock()
        start = type(kernel_manager).start_kernel  # the class's: no reference to the instance
        km_ref, owners_ref = self._km, weakref.ref(self)

        settings_env = dict(env or {})

        async def start_kernel(*args: Any, **kwargs: Any) -> str:
            owner, lab_env = _STARTING_FOR.get(), _LAB_ENV.get()
            if settings_env or lab_env:  # the server's store, never one from the kernel's folder
                env = {**(kwargs.get("env") or os.environ), **settings_env, **(lab_env or {})}
                if lab_env is not None and "OPSJOBS_SCOPE_OWNER" not in lab_env:
                    env.pop("OPSJOBS_SCOPE_OWNER", None)
                kwargs["env"] = env
            kernel_id: str = await ensure_async(start(km_ref(), *args, **kwargs))
            owners = owners_ref()
            if owner is not None and owners is not None:
                _STARTING_FOR.set(None)  # one page, one kernel
                _LAB_ENV.set(None)
                owners._add(kernel_id, owner, lab=lab_env is not None)
            return kernel_id

        kernel_manager.start_kernel = start_kernel

    def _add(self, kernel_id: str, owner: str, *, lab: bool = False) -> None:
        km = self._km()
        with self._lock:
            # forget kernels that are gone (culled, shut down): the map stays as small as the
            # number of live kernels
            for gone in [k for k in self._owners if km is None or k not in km]:
                del self._owners[gone]
                self._lab.discard(gone)
            self._owners[kernel_id] = owner
            if lab:
                self._lab.add(kernel_id)

    def is_lab(self, kernel_id: str) -> bool:
        """Was this kernel started from JupyterLab (it may be sent any message)?"""
        with self._lock:
            return kernel_id in self._lab

    def owner(self, kernel_id: str) -> str | None:
        with self._lock:
            return self._owners.get(kernel_id)

    def owns(self, user_id: str | None, kernel_id: str) -> bool:
        return user_id is not None and self.owner(kernel_id) == user_id

    def forget(self, kernel_id: str) -> None:
        with self._lock:
            self._owners.pop(kernel_id, None)
            self._lab.discard(kernel_id)


class OwnedShutdownHandler(APIHandler):
    """Voila's page-unload shutdown, for the kernel's owner only (403 for anyone else, and for
    a kernel that does not exist: the same answer)."""

    @web.authenticated
    async def post(self, kernel_id: str) -> None:
        owners: KernelOwners | None = self.settings.get(SETTING)
        user = getattr(self.current_user, "opsjobs", None)  # see identity.opsjobs_user
        if owners is None or not owners.owns(user.id if user else None, kernel_id):
            raise web.HTTPError(403, "not your kernel")
        await ensure_async(self.kernel_manager.shutdown_kernel(kernel_id))
        owners.forget(kernel_id)
        self.set_status(204)
        self.finish()
