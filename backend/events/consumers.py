"""Websocket consumers only forward bus events; they check access once, at connect."""
from __future__ import annotations

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from accounts.access import can_view_study
from audit.log import record

from .names import ALL_GROUP, Event, study_group
from .snapshots import snapshot


class StudyConsumer(AsyncJsonWebsocketConsumer):
    """``/ws/studies/<uid>/``: every event of one study, starting with a snapshot of the state so far."""

    async def connect(self) -> None:
        self.study_uid = self.scope["url_route"]["kwargs"]["study_uid"]
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=4401)
            return
        if not await database_sync_to_async(can_view_study)(user, self.study_uid):
            await self.close(code=4403)
            return
        await self.channel_layer.group_add(study_group(self.study_uid), self.channel_name)
        await self.accept()
        await database_sync_to_async(record)(user, "events.subscribe", study_instance_uid=self.study_uid, coalesce=True)
        state = await database_sync_to_async(snapshot)(self.study_uid, user)
        await self.send_json({"event": Event.SNAPSHOT.value, "study": self.study_uid, "payload": state})

    async def disconnect(self, code: int) -> None:
        if hasattr(self, "study_uid"):
            await self.channel_layer.group_discard(study_group(self.study_uid), self.channel_name)

    async def receive_json(self, content, **kwargs) -> None:
        if content.get("type") == "ping":
            await self.send_json({"event": "pong"})

    async def bus_event(self, message: dict) -> None:
        await self.send_json({k: message[k] for k in ("event", "study", "time", "payload")})


class AllEventsConsumer(AsyncJsonWebsocketConsumer):
    """``/ws/events/``: events of every study the user may see (worklists, study list)."""

    async def connect(self) -> None:
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=4401)
            return
        self.user = user
        self._allowed: dict[str, bool] = {}
        await self.channel_layer.group_add(ALL_GROUP, self.channel_name)
        await self.accept()

    async def disconnect(self, code: int) -> None:
        await self.channel_layer.group_discard(ALL_GROUP, self.channel_name)

    async def bus_event(self, message: dict) -> None:
        uid = message["study"]
        if uid not in self._allowed:
            self._allowed[uid] = await database_sync_to_async(can_view_study)(self.user, uid)
        if self._allowed[uid]:
            await self.send_json({k: message[k] for k in ("event", "study", "time", "payload")})
