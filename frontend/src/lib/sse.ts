// Server-sent events over fetch, so the stream can carry `Authorization: Bearer …` (the
// browser's EventSource cannot send headers). `SseParser` is the WHATWG event-stream
// parser; `followEvents` keeps a stream open, and after a drop reconnects with
// `Last-Event-ID` set to the last id received, so no event is missed or repeated.
import { ApiProblem, problemFromResponse, toProblem } from "./problem";

export interface SseMessage {
  /** The `event:` field; `message` when absent. */
  event: string;
  /** The `data:` lines joined with `\n`. */
  data: string;
  /** The last `id:` seen so far on the stream (the Last-Event-ID to resume after). */
  id: string;
}

/** Incremental parser: feed it decoded text in any chunking, it returns complete events. */
export class SseParser {
  private buffer = "";
  private data: string[] = [];
  private event = "";
  private started = false;
  /** The stream's last event id (survives across events, as in the spec). */
  lastEventId: string;
  /** A `retry:` the server asked for, in ms. */
  retryMs: number | undefined;

  constructor(lastEventId = "") {
    this.lastEventId = lastEventId;
  }

  feed(chunk: string): SseMessage[] {
    this.buffer += chunk;
    if (!this.started && this.buffer.length > 0) {
      this.started = true;
      if (this.buffer.charCodeAt(0) === 0xfeff) this.buffer = this.buffer.slice(1);
    }
    const out: SseMessage[] = [];
    for (;;) {
      const m = /\r\n|\r|\n/.exec(this.buffer);
      if (!m) break;
      // A lone \r at the very end may be the first half of \r\n: wait for more.
      if (m[0] === "\r" && m.index === this.buffer.length - 1) break;
      const line = this.buffer.slice(0, m.index);
      this.buffer = this.buffer.slice(m.index + m[0].length);
      const msg = this.line(line);
      if (msg) out.push(msg);
    }
    return out;
  }

  private line(line: string): SseMessage | undefined {
    if (line === "") {
      const data = this.data;
      const event = this.event;
      this.data = [];
      this.event = "";
      if (data.length === 0) return undefined;
      return { event: event || "message", data: data.join("\n"), id: this.lastEventId };
    }
    if (line.startsWith(":")) return undefined; // a comment: keep-alive
    const colon = line.indexOf(":");
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    switch (field) {
      case "data":
        this.data.push(value);
        break;
      case "event":
        this.event = value;
        break;
      case "id":
        if (!value.includes("\0")) this.lastEventId = value;
        break;
      case "retry":
        if (/^\d+$/.test(value)) this.retryMs = Number(value);
        break;
      default:
        break; // unknown fields are ignored
    }
    return undefined;
  }
}

export type StreamState =
  | { state: "connecting" }
  | { state: "open" }
  | { state: "reconnecting"; attempt: number; inMs: number; problem: ApiProblem | undefined }
  | { state: "stopped"; problem: ApiProblem };

export interface FollowOptions<T> {
  /** The stream's URL (with its query). */
  url: string;
  /** Read when each connection is opened, so a new token is picked up. */
  token: () => string | null;
  /** Resume after this id on the first connection (later ones use the last id received). */
  lastEventId?: string;
  signal: AbortSignal;
  onEvent: (event: T, message: SseMessage) => void;
  /** Each (re)connection, once the stream answered 200: fetch a fresh snapshot here. */
  onOpen?: () => void;
  onState?: (s: StreamState) => void;
  /** A 401: the token is no longer accepted; the stream stops. */
  onUnauthorized?: (problem: ApiProblem) => void;
  /** Turns a message's data into an event (default: JSON.parse). */
  decode?: (message: SseMessage) => T;
  fetch?: typeof fetch;
  sleep?: (ms: number, signal: AbortSignal) => Promise<void>;
  /** Backoff after a failure: `min(maxDelayMs, baseDelayMs * 2^(attempt-1))`. */
  baseDelayMs?: number;
  maxDelayMs?: number;
}

function abortableSleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal.removeEventListener("abort", done);
      resolve();
    }
    signal.addEventListener("abort", done, { once: true });
  });
}

/** Whether a failed connection is worth retrying (outages and limits), or final. */
export function isRetryable(p: ApiProblem): boolean {
  return p.status === 0 || p.status === 429 || p.status >= 500;
}

/**
 * Follows a server-sent event stream until `signal` aborts, a 401, or a refusal that a retry
 * cannot fix (e.g. 400, 403). Returns the last event id received.
 */
export async function followEvents<T>(opts: FollowOptions<T>): Promise<string> {
  const doFetch = opts.fetch ?? globalThis.fetch.bind(globalThis);
  const sleep = opts.sleep ?? abortableSleep;
  const decode = opts.decode ?? ((m: SseMessage) => JSON.parse(m.data) as T);
  const base = opts.baseDelayMs ?? 1000;
  const max = opts.maxDelayMs ?? 30_000;
  let lastId = opts.lastEventId ?? "";
  let failures = 0;
  opts.onState?.({ state: "connecting" });
  while (!opts.signal.aborted) {
    let problem: ApiProblem | undefined;
    let retryMs: number | undefined;
    try {
      const headers: Record<string, string> = { Accept: "text/event-stream" };
      const token = opts.token();
      if (token) headers.Authorization = `Bearer ${token}`;
      if (lastId) headers["Last-Event-ID"] = lastId;
      const res = await doFetch(opts.url, { headers, signal: opts.signal, cache: "no-store" });
      if (!res.ok || !res.body) {
        const text = await res.text().catch(() => "");
        let body: unknown = text;
        try {
          body = JSON.parse(text);
        } catch {
          /* not JSON */
        }
        const p = problemFromResponse(res, body);
        if (p.status === 401) {
          opts.onState?.({ state: "stopped", problem: p });
          opts.onUnauthorized?.(p);
          return lastId;
        }
        if (!isRetryable(p)) {
          opts.onState?.({ state: "stopped", problem: p });
          return lastId;
        }
        throw p;
      }
      failures = 0;
      opts.onState?.({ state: "open" });
      opts.onOpen?.();
      const parser = new SseParser(lastId);
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
      try {
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          for (const m of parser.feed(value)) {
            lastId = m.id;
            let event: T;
            try {
              event = decode(m);
            } catch {
              continue; // a message we cannot read is skipped, its id still counts
            }
            opts.onEvent(event, m);
          }
          lastId = parser.lastEventId;
        }
      } finally {
        reader.releaseLock();
      }
      retryMs = parser.retryMs;
      // The server ended the stream (a restart, a proxy's timeout): reconnect at once-ish.
    } catch (e) {
      if (opts.signal.aborted) break;
      problem = toProblem(e);
    }
    if (opts.signal.aborted) break;
    failures += 1;
    const inMs = retryMs ?? Math.min(max, base * 2 ** (failures - 1));
    opts.onState?.({ state: "reconnecting", attempt: failures, inMs, problem });
    await sleep(inMs, opts.signal);
  }
  return lastId;
}
