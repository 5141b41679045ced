"""The lifecycle state machine (PROTOCOL §1.3): one handler per event, behind anti-replay.

After the signature passed, the pair (installation id, signature) is claimed atomically:
a replay of a webhook already processed is answered `success: true` without running it
again. A failed run — an error answer, an exception, even a cancellation, a run past its
deadline — releases the claim, so ShopiMind's resend is processed. A successful run marks
its claim completed. A claim neither released nor completed (the process was killed
mid-run) is retaken by the resend: at once when the replica that claimed it is no longer
alive (its heartbeat lapsed, it stopped, or it restarted since), else once stale. The
webhook is not lost.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import replace
from datetime import datetime

import trio

from sidecar.bridge.answers import LifecycleAnswer
from sidecar.clock import format_timestamp, parse_timestamp
from sidecar.concurrency import commit
from sidecar.declaration.model import LifecycleEvent
from sidecar.errors import BridgeError, ShopimindError
from sidecar.lifecycle.answers import Answer
from sidecar.lifecycle.deps import LifecycleDeps
from sidecar.lifecycle.integrator_config import push_integrator_config
from sidecar.lifecycle.merchant_config import config_writes, load_settings, settings_of
from sidecar.lifecycle.provisioning import NoAccessTokenError, provision_exclusively
from sidecar.logs import BoundLogger, get_logger
from sidecar.state_keys import (
    ACCESS_TOKEN,
    INBOUND_SECRET,
    PROVISIONING_IDS,
    PROVISIONING_REQUEST,
    new_inbound_secret,
)
from sidecar.store.records import Installation, InstallationChange, InstallationUpsert
from sidecar.sync.leases import LeaseBusyError

__all__ = [
    "WEBHOOK_CLAIM_STALE_SECONDS",
    "WEBHOOK_PROCESSING_TIMEOUT_SECONDS",
    "LifecycleDispatcher",
]

_log = get_logger("lifecycle")
_RELEASE_TIMEOUT_SECONDS = 10.0
WEBHOOK_PROCESSING_TIMEOUT_SECONDS = 600.0
"""The deadline of one webhook's processing; past it the run answers `internal_error`
and releases its claim. Generous: one call to the app or to ShopiMind may take about two
minutes when its peer is slow (30 s per attempt, four attempts, backoff), and an
activation chains several (the connection test, provisioning, the hook): such a run must
still end with its own answer (e.g. `connection_failed`), not be cut short."""
WEBHOOK_CLAIM_STALE_SECONDS = WEBHOOK_PROCESSING_TIMEOUT_SECONDS + 120.0
"""When an uncompleted claim may be retaken. Longer than the processing deadline plus the
release or completion that follows it (`_RELEASE_TIMEOUT_SECONDS`), with a margin for the
claim's own write and a slow event loop: a live run, however slow, has answered and
released or completed its claim before anyone may retake it, so only a dead process's
claim is ever retaken. Durations only are compared (the claim's age by one clock, the
deadline by this process's), so clock offsets between hosts do not matter."""

Handler = Callable[[str | None, Mapping[str, object], BoundLogger], Awaitable[Answer]]


def _text(payload: Mapping[str, object], key: str) -> str | None:
    value = payload.get(key)
    return value if isinstance(value, str) and value else None


def _merged_ids(stored: object, fresh: Mapping[str, Mapping[str, object]]) -> dict[str, object]:
    """The id map once `fresh` is merged into `stored` (as `State.merge_json` will)."""
    merged: dict[str, object] = dict(stored) if isinstance(stored, dict) else {}
    for kind, ids in fresh.items():
        known = merged.get(kind)
        merged[kind] = {**(known if isinstance(known, dict) else {}), **ids}
    return merged


class LifecycleDispatcher:
    """Runs lifecycle webhooks whose signature and shape were already checked."""

    def __init__(
        self,
        deps: LifecycleDeps,
        *,
        timeout_seconds: float = WEBHOOK_PROCESSING_TIMEOUT_SECONDS,
        stale_after_seconds: float = WEBHOOK_CLAIM_STALE_SECONDS,
    ) -> None:
        if stale_after_seconds <= timeout_seconds + _RELEASE_TIMEOUT_SECONDS:
            raise ValueError("a claim must go stale only after its run's deadline and release")
        self._deps = deps
        self._timeout_seconds = timeout_seconds
        self._stale_after_seconds = stale_after_seconds
        self._handlers: dict[str, tuple[LifecycleEvent, Handler]] = {
            "integration.installed": ("installed", self._installed),
            "integration.activated": ("activated", self._activated),
            "integration.deactivated": ("deactivated", self._deactivated),
            "integration.uninstalled": ("uninstalled", self._uninstalled),
            "integration.config_updated": ("config_updated", self._config_updated),
        }

    def knows(self, event: str) -> bool:
        """True for the five lifecycle events."""
        return event in self._handlers

    async def dispatch(
        self,
        event: str,
        installation_id: str | None,
        payload: Mapping[str, object],
        *,
        signature: str,
    ) -> Answer:
        """Process one webhook exactly once; the answer ShopiMind gets."""
        if event not in self._handlers:
            return Answer.failure("unknown_event")
        name, handler = self._handlers[event]
        log = _log.bind(installation_id=installation_id, event=name)
        if installation_id is None:
            return await self._run(handler, None, payload, log)
        claims = self._deps.store.webhook_claims
        if not await claims.claim(
            installation_id,
            signature,
            claimed_by=self._deps.owner,
            stale_after_seconds=self._stale_after_seconds,
        ):
            log.info("webhook replayed; already processed or being processed")
            return Answer.ok()
        answer: Answer | None = None
        try:
            answer = await self._run(handler, installation_id, payload, log)
            return answer
        finally:
            # Shielded: a cancelled or failed run must not leave the claim behind, or
            # ShopiMind's resend would be acknowledged without being processed; a
            # successful one must be recorded completed, or its claim would be retaken.
            if answer is None or not answer.success:
                await commit(
                    lambda: claims.release(installation_id, signature),
                    what="a webhook claim's release",
                    log=log,
                    timeout_seconds=_RELEASE_TIMEOUT_SECONDS,
                )
            else:
                await commit(
                    lambda: claims.complete(installation_id, signature),
                    what="a webhook claim's completion",
                    log=log,
                    timeout_seconds=_RELEASE_TIMEOUT_SECONDS,
                )

    async def _run(
        self,
        handler: Handler,
        installation_id: str | None,
        payload: Mapping[str, object],
        log: BoundLogger,
    ) -> Answer:
        with trio.move_on_after(self._timeout_seconds):
            try:
                answer = await handler(installation_id, payload, log)
            except Exception:
                log.exception("lifecycle webhook failed")
                return Answer.failure("internal_error")
            if not answer.success:
                log.warning("lifecycle webhook refused", error=answer.body.get("error"))
            return answer
        log.error("lifecycle webhook timed out", timeout_seconds=self._timeout_seconds)
        return Answer.failure("internal_error")

    # --- helpers ------------------------------------------------------------------------

    def _stamp(self, payload: Mapping[str, object], key: str) -> str:
        """ShopiMind's timestamp for the event, normalized; now when absent or unreadable."""
        text = _text(payload, key)
        if text is not None:
            try:
                return format_timestamp(parse_timestamp(text))
            except ValueError:
                pass
        return format_timestamp(self._now())

    def _now(self) -> datetime:
        return self._deps.clock()

    async def _recorded(
        self, installation_id: str, payload: Mapping[str, object], *, known: bool
    ) -> InstallationChange:
        """What `installed` and `activated` record: the installation upserted inactive, its
        token and configs when sent. `known`: the installation exists already."""
        deps = self._deps
        token = _text(payload, "access_token")
        configs = payload.get("configs")
        values: dict[str, str] = {}
        secrets: dict[str, str] = {ACCESS_TOKEN: token} if token is not None else {}
        delete: list[str] = []
        if isinstance(configs, Mapping):
            stored = (
                [entry.key for entry in await deps.store.state.keys(installation_id)]
                if known
                else []
            )
            values, config_secrets, delete = config_writes(
                deps.declaration.config_schema, configs, stored
            )
            secrets.update(config_secrets)
        return InstallationChange(
            installation_id=installation_id,
            upsert=InstallationUpsert(
                installation_id=installation_id,
                status="inactive",
                shop_domain=_text(payload, "shop_domain"),
                shop_name=_text(payload, "shop_name"),
                installed_at=self._stamp(payload, "installed_at")
                if "installed_at" in payload
                else None,
            ),
            values=values,
            secrets=secrets,
            delete=tuple(delete),
        )

    async def _forward(
        self,
        event: LifecycleEvent,
        installation: Installation | InstallationUpsert,
        settings: Mapping[str, object],
        *,
        inbound_secret: str | None = None,
        provisioning_ids: Mapping[str, object] | None = None,
    ) -> LifecycleAnswer | None:
        """Tell the app (when the declaration forwards `event`); its answer (None: not
        forwarded). Raise BridgeError on failure or refusal."""
        deps = self._deps
        if event not in deps.declaration.hooks.forward:
            return None
        answer = await deps.bridge.lifecycle(
            event,
            installation_id=installation.installation_id,
            settings=settings,
            shop_domain=installation.shop_domain,
            shop_name=installation.shop_name,
            inbound_secret=inbound_secret,
            provisioning_ids=provisioning_ids,
        )
        if not answer.ok:
            raise BridgeError(f"the app refused /lifecycle/{event}: {answer.error or 'no reason'}")
        return answer

    async def _recorded_answer(self, iid: str, answer: LifecycleAnswer) -> None:
        """What the app's answer to a hook brings: its account, its integrator config."""
        if answer.external_account is not None:
            await self._deps.store.installations.set_external_account(
                iid, answer.external_account.id, answer.external_account.name
            )
        if answer.integrator_config:
            await self._push_integrator_config(iid, answer.integrator_config)

    async def _push_integrator_config(self, iid: str, values: Mapping[str, object]) -> None:
        """Best effort: a value ShopiMind did not get is logged, the event goes on."""
        deps = self._deps
        log = _log.bind(installation_id=iid)
        token = await deps.store.state.get(iid, ACCESS_TOKEN)
        if not token:
            log.error("integrator config not pushed: no access token for this installation")
            return
        api = deps.shopimind.api(token, installation_id=iid)
        try:
            await push_integrator_config(api, deps.declaration.config_schema, values, log=log)
        except ShopimindError as exc:
            log.error("integrator config not pushed to ShopiMind", error=str(exc))

    async def _forward_best_effort(
        self,
        event: LifecycleEvent,
        installation: Installation,
        settings: Mapping[str, object],
        log: BoundLogger,
    ) -> None:
        try:
            answer = await self._forward(event, installation, settings)
            if answer is not None:
                await self._recorded_answer(installation.installation_id, answer)
        except BridgeError as exc:
            log.error("lifecycle hook failed; ignored", error=str(exc))

    async def _installation(self, installation_id: str) -> Installation:
        found = await self._deps.store.installations.get(installation_id)
        if found is None:  # pragma: no cover - every caller recorded it first
            raise LookupError(installation_id)
        return found

    # --- the five events ----------------------------------------------------------------
    # Each event's writes are one InstallationChange, applied in one transaction once every
    # step that can refuse the event has passed: a webhook that fails applies nothing, and
    # ShopiMind's resend (its claim released) does the whole thing.

    async def _installed(
        self, installation_id: str | None, payload: Mapping[str, object], log: BoundLogger
    ) -> Answer:
        if installation_id is None:
            return Answer.ok()
        store = self._deps.store
        known = await store.installations.get(installation_id) is not None
        change = await self._recorded(installation_id, payload, known=known)
        account = payload.get("external_account_id")
        if isinstance(account, str | int) and not isinstance(account, bool) and str(account):
            change = replace(
                change,
                external_account=(str(account), _text(payload, "external_account_name")),
            )
        await store.installations.apply(change)
        installation = await self._installation(installation_id)
        settings = await load_settings(store.state, installation_id)
        await self._forward_best_effort("installed", installation, settings, log)
        log.info("installation recorded")
        return Answer.ok()

    async def _activated(
        self, installation_id: str | None, payload: Mapping[str, object], log: BoundLogger
    ) -> Answer:
        deps = self._deps
        if installation_id is None:
            return Answer.failure("missing_installation_id")
        state = deps.store.state
        known = await deps.store.installations.get(installation_id)
        configs = payload.get("configs")
        # The settings, token and secret this activation would store, not stored yet.
        if isinstance(configs, Mapping):
            settings = settings_of(deps.declaration.config_schema, configs)
        else:
            settings = await load_settings(state, installation_id) if known else {}
        token = _text(payload, "access_token")
        if token is None and known:
            token = await state.get(installation_id, ACCESS_TOKEN)
        try:
            check = await deps.bridge.test_connection(settings)
        except BridgeError as exc:
            log.warning("connection test failed: the app did not answer", error=str(exc))
            return Answer.failure("connection_failed")
        if not check.ok:
            log.warning("connection test failed", error=check.error)
            return Answer.failure("connection_failed")
        try:
            outcome = await provision_exclusively(
                deps, installation_id, settings, token=token or "", record=False
            )
        except NoAccessTokenError:
            return Answer.failure("provisioning_failed: no access token for this installation")
        except LeaseBusyError:
            return Answer.failure("provisioning_failed: the installation is syncing; retry later")
        if outcome.errors and outcome.provisioned == 0:
            return Answer.failure(f"provisioning_failed: {outcome.errors[0]}")
        stored_ids = await state.get_json(installation_id, PROVISIONING_IDS) if known else None
        ids = _merged_ids(stored_ids, outcome.to_state())
        # The installation's inbound secret exists from its activation, forwarded or not.
        inbound_secret = (
            await state.get(installation_id, INBOUND_SECRET) if known else None
        ) or new_inbound_secret()
        change = await self._recorded(installation_id, payload, known=known is not None)
        prospective = InstallationUpsert(  # who the app is told about: as it will be stored
            installation_id=installation_id,
            status="inactive",
            shop_domain=_text(payload, "shop_domain") or (known.shop_domain if known else None),
            shop_name=_text(payload, "shop_name") or (known.shop_name if known else None),
        )
        try:
            answer = await self._forward(
                "activated",
                prospective,
                settings,
                inbound_secret=inbound_secret,
                provisioning_ids=ids,
            )
        except BridgeError as exc:
            log.error("activation hook failed", error=str(exc))
            return Answer.failure("internal_error")
        account = None if answer is None else answer.external_account
        await deps.store.installations.apply(
            replace(
                change,
                status="active",
                activated_at=self._stamp(payload, "activated_at"),
                external_account=None if account is None else (account.id, account.name),
                merge_json={PROVISIONING_IDS: outcome.to_state()},
                default_secrets={INBOUND_SECRET: inbound_secret},
            )
        )
        if answer is not None and answer.integrator_config:  # best effort, once the token is
            await self._push_integrator_config(installation_id, answer.integrator_config)
        # The backfill runs on its own; the webhook does not wait for it.
        await deps.sync_requests.request(installation_id, full=True)
        log.info("installation activated", provisioned=outcome.provisioned)
        return Answer.ok()

    async def _deactivated(
        self, installation_id: str | None, payload: Mapping[str, object], log: BoundLogger
    ) -> Answer:
        if installation_id is None:
            return Answer.ok()
        installation = await self._deps.store.installations.get(installation_id)
        if installation is None or installation.status != "active":
            log.info("already inactive; nothing to do")
            return Answer.ok()
        await self._deps.store.installations.set_status(
            installation_id, "inactive", deactivated_at=self._stamp(payload, "deactivated_at")
        )
        settings = await load_settings(self._deps.store.state, installation_id)
        await self._forward_best_effort("deactivated", installation, settings, log)
        log.info("installation deactivated")
        return Answer.ok()

    async def _uninstalled(
        self, installation_id: str | None, payload: Mapping[str, object], log: BoundLogger
    ) -> Answer:
        if installation_id is None:
            return Answer.ok()
        store = self._deps.store
        installation = await store.installations.get(installation_id)
        if installation is None or installation.status == "uninstalled":
            log.info("already uninstalled; nothing to do")
            return Answer.ok()
        settings = await load_settings(store.state, installation_id)
        # The status and the end of the credentials together: a revoked shop's credentials
        # are of no use and of some danger.
        await store.installations.apply(
            InstallationChange(
                installation_id=installation_id,
                status="uninstalled",
                uninstalled_at=self._stamp(payload, "uninstalled_at"),
                delete=(ACCESS_TOKEN, INBOUND_SECRET),
            )
        )
        await self._forward_best_effort("uninstalled", installation, settings, log)
        log.info("installation uninstalled")
        return Answer.ok()

    async def _config_updated(
        self, installation_id: str | None, payload: Mapping[str, object], log: BoundLogger
    ) -> Answer:
        deps = self._deps
        if installation_id is None:
            return Answer.ok()
        configs = payload.get("configs")
        known = await deps.store.installations.get(installation_id) is not None
        change = InstallationChange(
            installation_id=installation_id,
            upsert=None
            if known
            else InstallationUpsert(installation_id=installation_id, status="inactive"),
        )
        if isinstance(configs, Mapping):
            stored = [entry.key for entry in await deps.store.state.keys(installation_id)]
            values, secrets, delete = config_writes(deps.declaration.config_schema, configs, stored)
            change = replace(change, values=values, secrets=secrets, delete=tuple(delete))
        # Saving is the event: when it fails, nothing is saved and the resend saves it.
        await deps.store.installations.apply(change)
        try:
            await self._after_config_update(installation_id, log)
        except Exception as exc:  # noqa: BLE001 - best effort by contract, logged at error level
            log.error(
                "reprovisioning after a config update failed", error=f"{type(exc).__name__}: {exc}"
            )
        log.info("configuration updated")
        return Answer.ok()

    async def _after_config_update(self, installation_id: str, log: BoundLogger) -> None:
        """Re-provision and tell the app, best effort (PROTOCOL §1.3)."""
        deps = self._deps
        settings = await load_settings(deps.store.state, installation_id)
        try:
            outcome = await provision_exclusively(deps, installation_id, settings)
            for error in outcome.errors:
                log.error("reprovisioning after a config update failed", error=error)
        except NoAccessTokenError:
            log.info("no access token yet; provisioning waits for the activation")
        except LeaseBusyError:
            # Never provision while syncing: the engine provisions before its next run.
            await deps.store.state.set_json(
                installation_id, PROVISIONING_REQUEST, {"at": format_timestamp(self._now())}
            )
            log.info("the installation is syncing; provisioning will run before its next sync")
        installation = await self._installation(installation_id)
        await self._forward_best_effort("config_updated", installation, settings, log)
