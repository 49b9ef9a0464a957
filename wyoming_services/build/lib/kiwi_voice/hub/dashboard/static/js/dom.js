// Small DOM helpers: build elements without innerHTML (event data is never parsed as markup).

export function $(selector, root = document) {
  return root.querySelector(selector);
}

export function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (name === "class") node.className = value;
    else if (name === "dataset") Object.assign(node.dataset, value);
    else if (name.startsWith("on") && typeof value === "function") {
      node.addEventListener(name.slice(2), value);
    } else node.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

export function setText(node, text, { muted = false } = {}) {
  node.textContent = text;
  node.classList.toggle("muted", muted);
}

export function say(node, text, kind = "") {
  node.textContent = text;
  node.classList.toggle("error", kind === "error");
  node.classList.toggle("ok", kind === "ok");
}

export function timeOf(timestamp) {
  return new Date(timestamp * 1000).toLocaleTimeString([], { hour12: false });
}

// Run an async action from a button: disable it while running, report errors on `status`.
export async function busy(button, status, action) {
  button.disabled = true;
  try {
    return await action();
  } catch (err) {
    if (status) say(status, err.message, "error");
    return undefined;
  } finally {
    button.disabled = false;
  }
}
