// A tiny element builder: no innerHTML anywhere (run names and messages are data, never markup), and attributes only
// through the DOM, which the webview's Content-Security-Policy allows.

type Child = Node | string | null | undefined | false;

export interface Props {
  id?: string;
  class?: string;
  text?: string;
  title?: string;
  attrs?: Record<string, string>;
}

export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  props: Props = {},
  children: Child[] = [],
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  if (props.id) el.id = props.id;
  if (props.class) el.className = props.class;
  if (props.title) el.title = props.title;
  if (props.text !== undefined) el.textContent = props.text;
  for (const [k, v] of Object.entries(props.attrs ?? {})) el.setAttribute(k, v);
  for (const c of children) if (c) el.append(c);
  return el;
}

/** Sets text only when it changed (live updates touch the DOM a few times a second). */
export function setText(el: Element, text: string): void {
  if (el.textContent !== text) el.textContent = text;
}
