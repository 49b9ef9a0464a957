"""Config flow: add a hub by hand or from the add-on, re-enter its token, move it, link people."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import voluptuous as vol
from homeassistant.config_entries import (
    ConfigEntry,
    ConfigEntryState,
    ConfigFlow,
    ConfigFlowResult,
    OptionsFlow,
)
from homeassistant.const import CONF_HOST, CONF_PORT, CONF_TOKEN
from homeassistant.core import callback
from homeassistant.helpers.aiohttp_client import async_get_clientsession
from homeassistant.helpers.selector import (
    EntitySelector,
    EntitySelectorConfig,
    NumberSelector,
    NumberSelectorConfig,
    NumberSelectorMode,
    TextSelector,
    TextSelectorConfig,
    TextSelectorType,
)
from homeassistant.helpers.service_info.hassio import HassioServiceInfo

from .api import (
    HubInfo,
    KiwiAuthenticationError,
    KiwiClient,
    KiwiConnectionError,
    KiwiError,
)
from .const import CONF_SPEAKER_PERSONS, DEFAULT_NAME, DEFAULT_PORT, DOMAIN, LOGGER
from .identity import hub_unique_id, takes_instance_id

TOKEN_SELECTOR = TextSelector(TextSelectorConfig(type=TextSelectorType.PASSWORD))
PORT_SELECTOR = vol.All(
    NumberSelector(NumberSelectorConfig(min=1, max=65535, mode=NumberSelectorMode.BOX)),
    vol.Coerce(int),
)


def _connection_schema(defaults: Mapping[str, Any]) -> vol.Schema:
    return vol.Schema(
        {
            vol.Required(CONF_HOST, default=defaults.get(CONF_HOST, vol.UNDEFINED)): str,
            vol.Required(CONF_PORT, default=defaults.get(CONF_PORT, DEFAULT_PORT)): PORT_SELECTOR,
            vol.Required(CONF_TOKEN): TOKEN_SELECTOR,
        }
    )


class KiwiConfigFlow(ConfigFlow, domain=DOMAIN):
    """Handle a config flow for Kiwi."""

    VERSION = 1

    _discovery: dict[str, Any]
    _addon_name: str

    @staticmethod
    @callback
    def async_get_options_flow(config_entry: ConfigEntry) -> KiwiOptionsFlow:
        """Link speaker profiles to people."""
        return KiwiOptionsFlow()

    async def _async_probe(
        self, host: str, port: int, token: str
    ) -> tuple[str | None, HubInfo | None]:
        """Try the hub with this token: (the error key, None) or (None, its identity)."""
        client = KiwiClient(host, port, token, async_get_clientsession(self.hass))
        try:
            info = await client.health()
            await client.status()
        except KiwiAuthenticationError:
            return "invalid_auth", None
        except KiwiConnectionError:
            return "cannot_connect", None
        except KiwiError:
            return "not_kiwi", None
        except Exception:
            LOGGER.exception("Unexpected error while probing the Kiwi hub")
            return "unknown", None
        return None, info

    async def async_step_user(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Ask for the hub's address and token, and try them before creating the entry."""
        errors: dict[str, str] = {}
        if user_input is not None:
            host, port = user_input[CONF_HOST].strip(), int(user_input[CONF_PORT])
            error, info = await self._async_probe(host, port, user_input[CONF_TOKEN])
            if error or info is None:
                errors["base"] = error or "unknown"
            else:
                await self.async_set_unique_id(hub_unique_id(info.instance_id, host, port))
                self._abort_if_unique_id_configured()
                # The same hub in an entry from before instance ids (`host:port`).
                self._async_abort_entries_match({CONF_HOST: host, CONF_PORT: port})
                return self.async_create_entry(
                    title=DEFAULT_NAME,
                    data={CONF_HOST: host, CONF_PORT: port, CONF_TOKEN: user_input[CONF_TOKEN]},
                )
        return self.async_show_form(
            step_id="user",
            data_schema=self.add_suggested_values_to_schema(
                _connection_schema({}), user_input or {}
            ),
            errors=errors,
        )

    async def async_step_hassio(self, discovery_info: HassioServiceInfo) -> ConfigFlowResult:
        """The Kiwi add-on announced its hub (host, port and token) through the Supervisor."""
        config = discovery_info.config
        try:
            host, port, token = str(config["host"]), int(config["port"]), str(config["token"])
        except (KeyError, TypeError, ValueError):
            return self.async_abort(reason="invalid_discovery_info")
        data: dict[str, Any] = {CONF_HOST: host, CONF_PORT: port, CONF_TOKEN: token}
        instance_id = config.get("instance_id")
        if not isinstance(instance_id, str) or not instance_id:
            instance_id = await self._async_instance_id(host, port)
        # Without an answer from the hub, the discovery's id (the entry adopts the hub's at setup).
        await self.async_set_unique_id(instance_id or discovery_info.uuid)
        self._abort_if_unique_id_configured(updates=data)
        for entry in self._async_current_entries(include_ignore=False):
            same_address = (entry.data.get(CONF_HOST), entry.data.get(CONF_PORT)) == (
                data[CONF_HOST],
                data[CONF_PORT],
            )
            if same_address or entry.unique_id == discovery_info.uuid:
                # The same hub added by hand, or this add-on's entry from before instance ids:
                # one entry, which takes the hub's identity.
                return self.async_update_reload_and_abort(
                    entry, unique_id=self.unique_id, data_updates=data
                )
        self._discovery = data
        self._addon_name = discovery_info.name or DEFAULT_NAME
        self.context["title_placeholders"] = {"name": self._addon_name}
        return await self.async_step_hassio_confirm()

    async def _async_instance_id(self, host: str, port: int) -> str | None:
        """The hub's instance id from /api/health (no token needed); None if it cannot say."""
        client = KiwiClient(host, port, "", async_get_clientsession(self.hass))
        try:
            return (await client.health()).instance_id
        except KiwiError:
            return None

    async def async_step_hassio_confirm(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Ask the user to confirm the add-on's hub."""
        errors: dict[str, str] = {}
        if user_input is not None:
            data = self._discovery
            error, _info = await self._async_probe(
                data[CONF_HOST], data[CONF_PORT], data[CONF_TOKEN]
            )
            if error is None:
                return self.async_create_entry(title=self._addon_name, data=data)
            errors["base"] = error
        return self.async_show_form(
            step_id="hassio_confirm",
            description_placeholders={"addon": self._addon_name},
            errors=errors,
        )

    async def async_step_reauth(self, entry_data: Mapping[str, Any]) -> ConfigFlowResult:
        """The hub refused the token."""
        return await self.async_step_reauth_confirm()

    async def async_step_reauth_confirm(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Ask for the hub's new token."""
        entry = self._get_reauth_entry()
        errors: dict[str, str] = {}
        if user_input is not None:
            error, _info = await self._async_probe(
                entry.data[CONF_HOST], entry.data[CONF_PORT], user_input[CONF_TOKEN]
            )
            if error is None:
                return self.async_update_reload_and_abort(
                    entry, data_updates={CONF_TOKEN: user_input[CONF_TOKEN]}
                )
            errors["base"] = error
        return self.async_show_form(
            step_id="reauth_confirm",
            data_schema=vol.Schema({vol.Required(CONF_TOKEN): TOKEN_SELECTOR}),
            description_placeholders={"host": f"{entry.data[CONF_HOST]}:{entry.data[CONF_PORT]}"},
            errors=errors,
        )

    async def async_step_reconfigure(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Point the entry at the hub's new address (and token)."""
        entry = self._get_reconfigure_entry()
        errors: dict[str, str] = {}
        if user_input is not None:
            host, port = user_input[CONF_HOST].strip(), int(user_input[CONF_PORT])
            error, info = await self._async_probe(host, port, user_input[CONF_TOKEN])
            if error or info is None:
                errors["base"] = error or "unknown"
            else:
                unique_id = hub_unique_id(info.instance_id, host, port)
                if not takes_instance_id(entry) and unique_id != entry.unique_id:
                    # The entry is a hub with its own identity: another hub is not a move.
                    return self.async_abort(reason="wrong_hub")
                if any(
                    other.unique_id == unique_id and other.entry_id != entry.entry_id
                    for other in self._async_current_entries(include_ignore=False)
                ):
                    return self.async_abort(reason="already_configured")
                return self.async_update_reload_and_abort(
                    entry,
                    unique_id=unique_id,
                    data_updates={
                        CONF_HOST: host,
                        CONF_PORT: port,
                        CONF_TOKEN: user_input[CONF_TOKEN],
                    },
                )
        return self.async_show_form(
            step_id="reconfigure",
            data_schema=self.add_suggested_values_to_schema(
                _connection_schema(entry.data), user_input or {}
            ),
            errors=errors,
        )


class KiwiOptionsFlow(OptionsFlow):
    """Link each speaker profile to a Home Assistant person."""

    async def async_step_init(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """One person picker per speaker profile the hub knows."""
        entry = self.config_entry
        if entry.state is not ConfigEntryState.LOADED:
            return self.async_abort(reason="not_loaded")
        people = entry.runtime_data.coordinator.data.people
        if not people:
            return self.async_abort(reason="no_speakers")
        # Field labels are the profiles' names; the options keep the stable profile ids.
        field_to_id = {_field_name(p.name, sid, people): sid for sid, p in people.items()}
        if user_input is not None:
            links = {
                field_to_id[field]: person
                for field, person in user_input.items()
                if field in field_to_id and person
            }
            return self.async_create_entry(data={**entry.options, CONF_SPEAKER_PERSONS: links})
        current: dict[str, str] = entry.options.get(CONF_SPEAKER_PERSONS, {})
        schema = vol.Schema(
            {
                vol.Optional(
                    field, description={"suggested_value": current.get(sid)}
                ): EntitySelector(EntitySelectorConfig(domain="person"))
                for field, sid in sorted(field_to_id.items())
            }
        )
        return self.async_show_form(step_id="init", data_schema=schema)


def _field_name(name: str, speaker_id: str, people: Mapping[str, Any]) -> str:
    """A profile's name, with its id added when another profile has the same name."""
    duplicates = sum(1 for profile in people.values() if profile.name == name)
    return name if duplicates == 1 else f"{name} ({speaker_id})"
