"""Conversation agent: Assist sends text to Kiwi's pipeline and speaks Kiwi's answer."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Literal

from homeassistant.components import conversation
from homeassistant.core import HomeAssistant
from homeassistant.helpers import intent, translation
from homeassistant.helpers.entity import EntityDescription
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .api import ConversationReply, KiwiError
from .assist_turn import utterance_for
from .const import DOMAIN
from .coordinator import KiwiConfigEntry
from .entity import KiwiEntity
from .errors import hub_error

PARALLEL_UPDATES = 0

AGENT = EntityDescription(key="conversation", name=None)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: KiwiConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add the hub's conversation agent."""
    async_add_entities([KiwiConversationEntity(entry, AGENT)])


class KiwiConversationEntity(KiwiEntity, conversation.ConversationEntity):
    """Routes Assist input to the hub's /api/conversation."""

    _attr_supports_streaming = True

    def __init__(self, entry: KiwiConfigEntry, description: EntityDescription) -> None:
        """Start with no hub conversations."""
        super().__init__(entry, description)
        # Assist's conversation id -> the hub's, so follow-up turns keep their context.
        self._hub_conversations: dict[str, str] = {}

    @property
    def supported_languages(self) -> list[str] | Literal["*"]:
        """The languages the hub speaks."""
        return list(self.coordinator.data.languages.available)

    async def _async_handle_message(
        self,
        user_input: conversation.ConversationInput,
        chat_log: conversation.ChatLog,
    ) -> conversation.ConversationResult:
        """Stream the hub's answer into the chat log (Assist can speak it as it comes)."""
        replies: list[ConversationReply] = []
        stream = self._async_deltas(user_input, chat_log, replies)
        try:
            async for _content in chat_log.async_add_delta_content_stream(self.entity_id, stream):
                pass
        except KiwiError as err:
            return await self._async_error_result(user_input, chat_log, err)
        [reply] = replies
        if reply.conversation_id:
            self._hub_conversations[chat_log.conversation_id] = reply.conversation_id
        if not isinstance(chat_log.content[-1], conversation.AssistantContent):
            # Nothing was streamed (an empty answer): the log still needs the answer.
            chat_log.async_add_assistant_content_without_tools(
                conversation.AssistantContent(agent_id=self.entity_id, content=reply.response)
            )
        result = conversation.async_get_result_from_chat_log(user_input, chat_log)
        if reply.response_type == "error":
            # Home Assistant's own agent did not understand; Kiwi passed its answer on.
            result.response.async_set_error(
                intent.IntentResponseErrorCode.NO_INTENT_MATCH, reply.response
            )
        return result

    async def _async_deltas(
        self,
        user_input: conversation.ConversationInput,
        chat_log: conversation.ChatLog,
        replies: list[ConversationReply],
    ) -> AsyncIterator[conversation.AssistantContentDeltaDict]:
        """The hub's stream as chat-log deltas; the final reply goes to ``replies``."""
        yield {"role": "assistant"}
        # Spoken through Kiwi's STT in this pipeline run: the hub knows who spoke it.
        utterance = utterance_for(user_input.text)
        async for piece in self.coordinator.client.converse(
            user_input.text,
            user_input.language,
            self._hub_conversations.get(chat_log.conversation_id),
            utterance_id=utterance.utterance_id if utterance else None,
        ):
            if isinstance(piece, ConversationReply):
                replies.append(piece)
            elif piece:
                yield {"content": piece}

    async def _async_error_result(
        self,
        user_input: conversation.ConversationInput,
        chat_log: conversation.ChatLog,
        error: KiwiError,
    ) -> conversation.ConversationResult:
        translated = hub_error(
            self.hass,
            self.coordinator.config_entry,
            error,
            failed_key="conversation_failed",
            unreachable_key="conversation_unreachable",
        )
        # The answer is spoken to the user: in their language, from translations/<lang>.json.
        translations = await translation.async_get_translations(
            self.hass, user_input.language, "exceptions", {DOMAIN}
        )
        template = translations.get(
            f"component.{DOMAIN}.exceptions.{translated.translation_key}.message"
        )
        placeholders = translated.translation_placeholders or {}
        message = template.format(**placeholders) if template else str(error)
        response = intent.IntentResponse(language=user_input.language)
        response.async_set_error(intent.IntentResponseErrorCode.UNKNOWN, message)
        return conversation.ConversationResult(
            response=response, conversation_id=chat_log.conversation_id
        )
