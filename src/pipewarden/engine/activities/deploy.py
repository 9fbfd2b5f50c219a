"""A stage's whole deploy in one activity (A_DEPLOY): the targets in parallel, each in its
batches in order, the hosts of a batch in parallel, the hooks in order on each host.

Why one activity rather than one per hook: an activity on a task queue other than the workflow's
waits about 40 ms in Temporal's matching and costs a workflow task each; with one per hook that
was most of the engine's overhead (benchmarks/RESULTS.md, issue 13 (a)). The hooks keep every
guarantee they had as activities of their own:

- each hook run is begun and finished in the store under its own key (`KEY_PREFIX/TARGET/HOST/
  PHASE`, the prefix from the workflow, run and activity ids), so a retried deploy (its worker
  died) reports the hooks that completed without running them again, records the one a crash cut
  off `interrupted` and runs it as the next attempt;
- one hook per host across workers: a host's lease is held from its first hook to its last;
- after the first failed host no new batch and no new hook starts anywhere; the hooks already
  running finish. The workflow stops the deploy the same way (`cancel`, the alarms tripwire)
  through the store (`halt_deploy`), read before every hook: a signal reaches a running activity
  only with a heartbeat's answer, seconds later.

The orchestration here is given its effects as callables (`HookRunner`), so it holds no store and
no Temporal state of its own: `EngineActivities.run_deploy` wires it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

from temporalio.exceptions import ApplicationError

from pipewarden.engine.contract import DeployAnswer, DeployRequest, DeployTarget, HookAnswer, HookRequest


@dataclass(frozen=True)
class Lease:
    """A host's lease asked for together with its first hook's start: `holder`, for `seconds`."""

    holder: str
    seconds: float


@dataclass(frozen=True)
class HookRunner:
    """The effects a deploy needs. `run` runs one hook under its key (ApplicationError with
    `non_retryable` when it cannot run at all: its artifact unreadable); with a `Lease` it first
    takes the host's lease in the same write as the hook's start, and answers None, having done
    nothing, while another hook run holds it. `lease` waits for a host's lease for `seconds` under a
    holder, False when `halted` became true while waiting; `release` gives it back (only the
    holder's own); `halted` says why the workflow stopped the deploy (None: go on)."""

    run: Callable[[HookRequest, str, Lease | None], HookAnswer | None]
    lease: Callable[[str, str, float, Callable[[], bool]], bool]
    release: Callable[[str, str], None]
    halted: Callable[[], str | None]


LEASE_MARGIN_SECONDS = 30


def hook_key(prefix: str, target: str, host: str, phase: str) -> str:
    """The idempotency key of one hook run of a deploy."""
    return f"{prefix}/{target}/{host}/{phase}"


class _Deploy:
    def __init__(self, request: DeployRequest, prefix: str, runner: HookRunner) -> None:
        self.request = request
        self.prefix = prefix
        self.runner = runner
        self._lock = threading.Lock()
        self._stopped = False
        self._halted = False
        self._failure: str | None = None
        self._error: BaseException | None = None

    def stopped(self) -> bool:
        """No new hook may start: a host failed, an error, or the workflow halted the deploy."""
        with self._lock:
            if self._stopped:
                return True
        if self.request.rollback or self.runner.halted() is None:
            return False
        with self._lock:
            self._stopped = self._halted = True
        return True

    def _fail(self, failure: str | None, error: BaseException | None = None) -> None:
        with self._lock:
            if self._failure is None and failure is not None:
                self._failure = failure
            if self._error is None and error is not None:
                self._error = error
            self._stopped = True

    def host(self, target: DeployTarget, host: str) -> None:
        holder = hook_key(self.prefix, target.target, host, "lease")
        seconds = len(target.hooks) * target.timeout_seconds + LEASE_MARGIN_SECONDS
        phase = target.hooks[0].phase if target.hooks else ""
        try:
            if self.stopped():
                return
            lease: Lease | None = Lease(holder, seconds)  # taken with the first hook's start
            try:
                for number, hook in enumerate(target.hooks):
                    if self.stopped():
                        return
                    phase = hook.phase
                    request, key = self._hook_request(target, host, number), hook_key(self.prefix, target.target,
                                                                                       host, phase)
                    answer = self.runner.run(request, key, lease)
                    if answer is None:  # another hook run holds the host: wait for it, then start
                        if not self.runner.lease(host, holder, seconds, self.stopped):
                            return
                        answer = self.runner.run(request, key, None)
                        assert answer is not None
                    lease = None
                    if not answer.ok:
                        self._fail(_failure(phase, host, answer, target.timeout_seconds))
                        return
            finally:
                self.runner.release(host, holder)
        except ApplicationError as error:
            if not error.non_retryable:
                self._fail(None, error)
                return
            # The hook could not be run at all (its artifact unreadable): the host fails like a
            # failing hook, so the stage can roll back.
            self._fail(f"hook {phase} on {host} could not run: {error}")
        except Exception as error:  # noqa: BLE001 - raised again by run() once every thread is done
            self._fail(None, error)

    def _wait(self, futures: list[Future[None]]) -> None:
        """Wait for every future; when the waiting itself is interrupted (the activity cancelled),
        nothing new starts and the hooks running finish before the pool's exit returns."""
        try:
            for future in futures:
                future.result()
        except BaseException:
            with self._lock:
                self._stopped = True
            raise

    def _hook_request(self, target: DeployTarget, host: str, number: int) -> HookRequest:
        request, hook = self.request, target.hooks[number]
        return HookRequest(request.execution, request.pipeline, request.repo, target.artifact, target.commit,
                           request.stage, target.target, host, request.hosts, hook.phase, hook.command,
                           target.timeout_seconds, target.production_config, request.rollback, number == 0,
                           number == len(target.hooks) - 1)

    def target(self, target: DeployTarget) -> None:
        for batch in target.batches:
            if self.stopped():
                return
            if len(batch) == 1:
                self.host(target, batch[0])
                continue
            with ThreadPoolExecutor(max_workers=len(batch), thread_name_prefix="pipewarden-host") as pool:
                self._wait([pool.submit(self.host, target, name) for name in batch])

    def run(self) -> DeployAnswer:
        targets = self.request.targets
        if len(targets) == 1:
            self.target(targets[0])
        elif targets:
            with ThreadPoolExecutor(max_workers=len(targets), thread_name_prefix="pipewarden-target") as pool:
                self._wait([pool.submit(self.target, target) for target in targets])
        if self._error is not None:
            raise self._error
        return DeployAnswer(not self._stopped, self._failure, self._halted and self._failure is None)


def run_deploy(request: DeployRequest, prefix: str, runner: HookRunner) -> DeployAnswer:
    """Run a deploy (see the module's docstring) and say how it ended. `prefix` makes the hook
    runs' keys (stable across the activity's attempts). An unexpected error of any host (the store
    unreachable) is raised once every running hook has finished, so the activity is retried."""
    return _Deploy(request, prefix, runner).run()


def _failure(phase: str, host: str, answer: HookAnswer, timeout_seconds: int) -> str:
    if answer.timed_out:
        return f"hook {phase} on {host} timed out after {timeout_seconds}s"
    return f"hook {phase} on {host} exited {answer.exit_code}" + (f" (output in {answer.log})" if answer.log else "")
