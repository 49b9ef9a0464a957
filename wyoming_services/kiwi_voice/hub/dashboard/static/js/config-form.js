// The configuration form, built from the hub's own OpenAPI document (the `Settings` schema), so a
// new setting appears here without a change to the page. Errors the hub answers to a PATCH are
// shown next to the field they name.

import { $, el, say } from "./dom.js";

const HIDDEN_FIELDS = new Set(["secrets_configured"]);

function fieldKind(schema, value) {
  if (schema.enum || schema.const !== undefined) return "select";
  const type = Array.isArray(schema.type) ? schema.type.find((t) => t !== "null") : schema.type;
  if (type === "boolean" || typeof value === "boolean") return "checkbox";
  if (type === "number" || type === "integer" || typeof value === "number") return "number";
  return "text";
}

const WORDS = { tts: "TTS", stt: "STT", llm: "LLM", nsfw: "NSFW", url: "URL", vad: "VAD", homeassistant: "Home Assistant", api: "API", qwen: "Qwen" };

function label(name) {
  const text = name.split("_").map((word) => WORDS[word] ?? word).join(" ");
  return text.charAt(0).toUpperCase() + text.slice(1);
}

export class ConfigForm {
  constructor(api) {
    this.api = api;
    this.form = $("#config-form");
    this.fields = $("#config-fields");
    this.status = $("#config-status");
    this.secrets = $("#config-secrets");
    this.values = {};
    this.inputs = new Map(); // name -> {input, error, kind}
    this.form.addEventListener("submit", (event) => this.save(event));
    this.form.addEventListener("reset", (event) => {
      event.preventDefault();
      this.fill(this.values);
    });
  }

  async load() {
    try {
      const [config, schema] = await Promise.all([this.api.get("api/config"), this.settingsSchema()]);
      this.build(config, schema);
    } catch (err) {
      say(this.status, `Cannot load the configuration: ${err.message}`, "error");
    }
  }

  async settingsSchema() {
    try {
      const document = await this.api.get("api/openapi.json");
      const schemas = document?.components?.schemas ?? {};
      return schemas.Settings?.properties ?? schemas.ConfigResponse?.properties ?? {};
    } catch {
      return {}; // the form still works, typed from the values alone
    }
  }

  build(config, schema) {
    this.inputs.clear();
    const rows = [];
    // With the schema known, a field it does not list is something the hub reports, not a setting.
    const known = Object.keys(schema).length > 0;
    for (const [name, value] of Object.entries(config)) {
      if (HIDDEN_FIELDS.has(name)) continue;
      rows.push(this.field(name, value, schema[name] ?? {}, known && !(name in schema)));
    }
    this.fields.replaceChildren(...rows);
    const secrets = Object.entries(config.secrets_configured ?? {});
    this.secrets.textContent = secrets.length
      ? `Secrets (set in the add-on options): ${secrets.map(([n, set]) => `${label(n)} ${set ? "✓ set" : "✗ not set"}`).join(" · ")}`
      : "";
    this.fill(config);
  }

  field(name, value, schema, readOnly) {
    const kind = fieldKind(schema, value);
    const id = `config-${name}`;
    const errorId = `${id}-error`;
    const hintId = `${id}-hint`;
    const common = { id, name, "aria-describedby": `${hintId} ${errorId}`, disabled: readOnly };
    let input;
    if (kind === "select") {
      const options = schema.enum ?? [schema.const];
      input = el("select", common, ...options.filter((o) => o !== null).map((o) => el("option", { value: o }, o)));
    } else if (kind === "checkbox") {
      input = el("input", { ...common, type: "checkbox" });
    } else if (kind === "number") {
      const integer = schema.type === "integer";
      input = el("input", {
        ...common,
        type: "number",
        step: integer ? "1" : "any",
        min: schema.minimum,
        max: schema.maximum,
        inputmode: integer ? "numeric" : "decimal",
      });
    } else {
      input = el("input", { ...common, type: "text", maxlength: schema.maxLength, autocomplete: "off" });
    }
    const limits = [];
    if (schema.minimum !== undefined) limits.push(`min ${schema.minimum}`);
    if (schema.maximum !== undefined) limits.push(`max ${schema.maximum}`);
    const hint = [schema.description, limits.join(", "), readOnly ? "read only" : ""].filter(Boolean).join(" · ");
    const error = el("span", { id: errorId, class: "field-error", role: "alert" });
    this.inputs.set(name, { input, error, kind, readOnly });
    const wrap = el("div", { class: `config-field ${kind === "checkbox" ? "checkbox" : ""}`, dataset: { field: name } });
    if (kind === "checkbox") wrap.append(input, el("label", { for: id }, label(name)));
    else wrap.append(el("label", { for: id }, label(name)), input);
    wrap.append(el("span", { id: hintId, class: "hint" }, hint), error);
    return wrap;
  }

  fill(values) {
    this.values = { ...values };
    for (const [name, { input, kind }] of this.inputs) {
      if (kind === "checkbox") input.checked = Boolean(values[name]);
      else input.value = values[name] ?? "";
      this.clearError(name);
    }
  }

  read(name) {
    const { input, kind } = this.inputs.get(name);
    if (kind === "checkbox") return input.checked;
    if (kind === "number") return input.value.trim() === "" ? Number.NaN : Number(input.value);
    return input.value;
  }

  changes() {
    const patch = {};
    for (const [name, { readOnly }] of this.inputs) {
      const value = this.read(name);
      if (!readOnly && value !== (this.values[name] ?? "")) patch[name] = value;
    }
    return patch;
  }

  clearError(name) {
    const { input, error } = this.inputs.get(name);
    input.removeAttribute("aria-invalid");
    error.textContent = "";
  }

  showError(name, message) {
    const entry = this.inputs.get(name);
    if (!entry) return false;
    entry.input.setAttribute("aria-invalid", "true");
    entry.error.textContent = message;
    entry.input.focus();
    return true;
  }

  async save(event) {
    event.preventDefault();
    for (const name of this.inputs.keys()) this.clearError(name);
    const patch = this.changes();
    const notNumbers = Object.entries(patch).filter(([, v]) => typeof v === "number" && Number.isNaN(v));
    if (notNumbers.length) {
      for (const [name] of notNumbers) this.showError(name, "Enter a number.");
      say(this.status, "Fix the marked field.", "error");
      return;
    }
    if (Object.keys(patch).length === 0) {
      say(this.status, "Nothing changed.");
      return;
    }
    const button = event.submitter ?? this.form.querySelector("button[type=submit]");
    button.disabled = true;
    try {
      const { updated, notices = [] } = await this.api.patch("api/config", patch);
      this.fill({ ...this.values, ...patch, ...updated });
      const names = Object.keys(updated);
      const saved = names.length ? `Saved: ${names.join(", ")}.` : "Saved (no value changed).";
      // The change took effect; a notice says what the owner should know about it.
      const notes = notices.map((notice) => notice.message).join(" ");
      say(this.status, notes ? `${saved} ${notes}` : saved, notes ? "error" : "ok");
    } catch (err) {
      // The hub names the first wrong field; show its message right there.
      const shown = err.field && this.showError(err.field, err.message);
      say(this.status, shown ? "The hub refused a value: see the marked field." : err.message, "error");
    } finally {
      button.disabled = false;
    }
  }

  // Settings changed by someone else: take the new values unless the user is editing that field.
  changedElsewhere(updated) {
    const editing = this.changes();
    const merged = { ...this.values };
    for (const [name, value] of Object.entries(updated)) {
      merged[name] = value;
      if (!(name in editing)) {
        const entry = this.inputs.get(name);
        if (entry?.kind === "checkbox") entry.input.checked = Boolean(value);
        else if (entry) entry.input.value = value;
      }
    }
    this.values = merged;
  }
}
