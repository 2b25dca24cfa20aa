import { describe, expect, it, vi } from "vitest";
import { followEvents, SseParser, type SseMessage, type StreamState } from "./sse";

function parseAll(text: string, chunk = text.length): SseMessage[] {
  const p = new SseParser();
  const out: SseMessage[] = [];
  for (let i = 0; i < text.length; i += chunk) out.push(...p.feed(text.slice(i, i + chunk)));
  return out;
}

const STREAM =
  "\uFEFF: keep-alive\n" +
  "event: step.started\nid: 10-1\ndata: {\"a\":1}\n\n" +
  "event: step.succeeded\r\nid: 10-2\r\ndata: line one\r\ndata: line two\r\n\r\n" +
  "data: no id or event\r\r" +
  "id: 11-3\nevent: store.ready\ndata:{\"b\":2}\n\n";

describe("SseParser", () => {
  it("reads events, ids, multi-line data, comments and every line ending", () => {
    expect(parseAll(STREAM)).toEqual([
      { event: "step.started", id: "10-1", data: '{"a":1}' },
      { event: "step.succeeded", id: "10-2", data: "line one\nline two" },
      { event: "message", id: "10-2", data: "no id or event" },
      { event: "store.ready", id: "11-3", data: '{"b":2}' },
    ]);
  });

  it("gives the same events however the stream is chunked (even between \\r and \\n)", () => {
    const whole = parseAll(STREAM);
    for (const size of [1, 2, 3, 7, 13]) expect(parseAll(STREAM, size)).toEqual(whole);
  });

  it("keeps an incomplete event until its blank line arrives", () => {
    const p = new SseParser();
    expect(p.feed("id: 1-1\ndata: x")).toEqual([]);
    expect(p.feed("\n")).toEqual([]);
    expect(p.feed("\n")).toEqual([{ event: "message", id: "1-1", data: "x" }]);
  });

  it("starts from a given last id, ignores ids with NUL and takes retry", () => {
    const p = new SseParser("5-5");
    expect(p.feed("data: a\n\n")[0]?.id).toBe("5-5");
    p.feed("id: bad\0id\nretry: 2500\nretry: soon\n\n");
    expect(p.lastEventId).toBe("5-5");
    expect(p.retryMs).toBe(2500);
  });
});

/** A fake fetch answering each call with the next scripted reply, recording the requests. */
function scripted(replies: (() => Response | Promise<Response>)[]) {
  const calls: { url: string; headers: Record<string, string> }[] = [];
  const fetch = vi.fn(async (url: RequestInfo | URL, init?: RequestInit) => {
    calls.push({ url: String(url), headers: { ...(init?.headers as Record<string, string>) } });
    const next = replies.shift();
    if (!next) throw new Error("no more replies");
    return next();
  });
  return { fetch: fetch as unknown as typeof globalThis.fetch, calls };
}

function sse(...chunks: string[]): Response {
  const body = new ReadableStream<Uint8Array>({
    start(c) {
      for (const ch of chunks) c.enqueue(new TextEncoder().encode(ch));
      c.close();
    },
  });
  return new Response(body, { status: 200, headers: { "content-type": "text/event-stream" } });
}

function problem(status: number, detail = "nope", headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify({ type: "about:blank", title: "T", status, detail, errors: [] }), {
    status,
    headers: { "content-type": "application/problem+json", ...headers },
  });
}

const ev = (id: string, kind: string) => `event: ${kind}\nid: ${id}\ndata: ${JSON.stringify({ cursor: id, kind })}\n\n`;

describe("followEvents", () => {
  it("resumes after a drop with Last-Event-ID = the last id received, and stops on 401", async () => {
    const { fetch, calls } = scripted([
      () => sse(ev("7-1", "step.started"), ": ping\n\n", ev("7-2", "step.succeeded")),
      () => {
        throw new TypeError("network down");
      },
      () => sse(ev("8-3", "store.ready")),
      () => problem(401),
    ]);
    const got: string[] = [];
    const states: StreamState["state"][] = [];
    const sleeps: number[] = [];
    const unauthorized = vi.fn();
    const opens = vi.fn();
    const last = await followEvents<{ cursor: string; kind: string }>({
      url: "http://api/api/v1/events?store_id=s",
      token: () => "urumi_secret",
      signal: new AbortController().signal,
      onEvent: (e) => got.push(`${e.cursor} ${e.kind}`),
      onOpen: opens,
      onState: (s) => states.push(s.state),
      onUnauthorized: unauthorized,
      fetch,
      sleep: async (ms) => void sleeps.push(ms),
    });
    expect(got).toEqual(["7-1 step.started", "7-2 step.succeeded", "8-3 store.ready"]);
    expect(calls.map((c) => c.headers["Last-Event-ID"])).toEqual([undefined, "7-2", "7-2", "8-3"]);
    for (const c of calls) {
      expect(c.headers.Authorization).toBe("Bearer urumi_secret");
      expect(c.url).not.toContain("urumi_secret");
    }
    expect(opens).toHaveBeenCalledTimes(2);
    expect(unauthorized).toHaveBeenCalledOnce();
    expect(states.at(-1)).toBe("stopped");
    expect(last).toBe("8-3");
    // Backoff doubles while failing, and starts over after a successful connection.
    expect(sleeps).toEqual([1000, 2000, 1000]);
  });

  it("starts from a given cursor and retries outages but not refusals", async () => {
    const { fetch, calls } = scripted([
      () => problem(503),
      () => problem(429, "slow down", { "retry-after": "3" }),
      () => problem(400, "malformed Last-Event-ID"),
    ]);
    const states: StreamState[] = [];
    await followEvents({
      url: "u",
      token: () => null,
      lastEventId: "3-9",
      signal: new AbortController().signal,
      onEvent: () => {},
      onState: (s) => states.push(s),
      fetch,
      sleep: async () => {},
    });
    expect(calls).toHaveLength(3);
    expect(calls[0]?.headers["Last-Event-ID"]).toBe("3-9");
    expect(calls[0]?.headers.Authorization).toBeUndefined();
    const last = states.at(-1);
    expect(last?.state).toBe("stopped");
    expect(last?.state === "stopped" && last.problem.detail).toBe("malformed Last-Event-ID");
  });

  it("skips a message it cannot decode but keeps its id", async () => {
    const { fetch, calls } = scripted([() => sse("id: 1-1\ndata: {broken\n\n", ev("1-2", "x")), () => problem(401)]);
    const got: string[] = [];
    await followEvents<{ cursor: string }>({
      url: "u",
      token: () => "t",
      signal: new AbortController().signal,
      onEvent: (e) => got.push(e.cursor),
      fetch,
      sleep: async () => {},
    });
    expect(got).toEqual(["1-2"]);
    expect(calls[1]?.headers["Last-Event-ID"]).toBe("1-2");
  });

  it("stops when aborted", async () => {
    const ctl = new AbortController();
    const { fetch, calls } = scripted([() => sse(ev("1-1", "a")), () => sse(ev("1-2", "b"))]);
    await followEvents({
      url: "u",
      token: () => "t",
      signal: ctl.signal,
      onEvent: () => ctl.abort(),
      fetch,
      sleep: async () => {},
    });
    expect(calls).toHaveLength(1);
  });
});
