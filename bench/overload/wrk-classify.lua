-- wrk script for bench/overload (HTTP/1.1, keep-alive): POSTs one image to
-- /v1/models/{m}/classify and records, per request, its send time, status and latency, so that
-- refusals (429) and completions (200) get separate latencies — wrk's own histogram mixes them.
--
-- Each request carries `x-request-id: <thread>.<seq>`, which the server echoes on every answer
-- (src/api/http/request-context.ts): response() matches the answer to its request by it.
--
-- Open loop (OVERLOAD_RATE > 0, requests per second per wrk thread): delay() hands each idle
-- connection the next slot of a fixed schedule, so the thread sends at that rate whatever the
-- answers, as long as a connection is free (the lateness of each send against its slot is
-- recorded: late sends mean too few connections). wrk asks delay() before a connection's first
-- request too, so the run starts on the schedule, without a burst. Closed loop (OVERLOAD_RATE =
-- 0): every connection sends its next request as soon as it has an answer.
--
-- Settings come from the environment (read at load, before wrk decides whether delay() exists):
--   OVERLOAD_BODY                    file sent as the body
--   OVERLOAD_PATH, OVERLOAD_CONTENT_TYPE
--   OVERLOAD_RATE                    per thread; 0 = closed loop
--   OVERLOAD_OUT                     where done() writes the samples (tab-separated, below)
local ffi = require("ffi")
ffi.cdef[[
typedef struct { long tv_sec; long tv_nsec; } overload_timespec;
int clock_gettime(int clk_id, overload_timespec *tp);
]]
local ts = ffi.new("overload_timespec")
local function clock_us(id)
  ffi.C.clock_gettime(id, ts)
  return tonumber(ts.tv_sec) * 1000000 + tonumber(ts.tv_nsec) / 1000
end
local function mono_us() return clock_us(1) end      -- CLOCK_MONOTONIC: latencies
local function real_us() return clock_us(0) end      -- CLOCK_REALTIME: send times, comparable across processes

local rate = tonumber(os.getenv("OVERLOAD_RATE") or "0")
local open_loop = rate > 0
local body_file = assert(os.getenv("OVERLOAD_BODY"), "OVERLOAD_BODY not set")
local f = assert(io.open(body_file, "rb"))
local body = f:read("*a")
f:close()
local path = assert(os.getenv("OVERLOAD_PATH"), "OVERLOAD_PATH not set")
local content_type = os.getenv("OVERLOAD_CONTENT_TYPE") or "application/octet-stream"

-- setup() runs in the main Lua state, once per thread.
local threads = {}
local next_id = 0
function setup(thread)
  next_id = next_id + 1
  thread:set("id", next_id)
  table.insert(threads, thread)
end

-- Per-thread state (each wrk thread has its own Lua state).
id = 0
seq = 0
sent = {}       -- seq -> CLOCK_REALTIME µs at send
status = {}     -- seq -> HTTP status of the answer
latency = {}    -- seq -> µs from send to the end of the answer
late = {}       -- seq -> µs the send was behind its slot (open loop)
unmatched = 0   -- answers without a request id this thread sent
local sent_mono = {}
local head, tail
local interval_us = open_loop and 1000000 / rate or 0
local next_slot
local slots, slot_head, slot_tail = {}, 1, 0

function init(_)
  head = string.format("POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: %s\r\nContent-Length: %d\r\nx-request-id: ",
    path, wrk.host, content_type, #body)
  tail = "\r\n\r\n" .. body
end

if open_loop then
  function delay()
    local now = mono_us()
    if not next_slot then next_slot = now end
    local slot = next_slot
    next_slot = next_slot + interval_us
    slot_tail = slot_tail + 1
    slots[slot_tail] = slot
    local wait_ms = (slot - now) / 1000
    return wait_ms > 0 and math.floor(wait_ms) or 0
  end
end

function request()
  seq = seq + 1
  local now = mono_us()
  sent[seq] = real_us()
  sent_mono[seq] = now
  if slot_head <= slot_tail then
    late[seq] = math.max(0, now - slots[slot_head])
    slots[slot_head] = nil
    slot_head = slot_head + 1
  end
  return head .. id .. "." .. seq .. tail
end

function response(code, headers, _)
  local now = mono_us()
  local rid = headers["x-request-id"] or headers["X-Request-Id"]
  local n = rid and tonumber(rid:match("^" .. id .. "%.(%d+)$"))
  if not n or not sent_mono[n] then
    unmatched = unmatched + 1
    return
  end
  status[n] = code
  latency[n] = now - sent_mono[n]
  sent_mono[n] = nil
end

-- One line per request sent: "r <thread> <seq> <sent µs> <status|-> <latency µs|-> <late µs|->",
-- then "summary <duration µs> <requests> <bytes> <connect> <read> <write> <status> <timeout> <unmatched>".
function done(summary, _, _)
  local out = assert(io.open(assert(os.getenv("OVERLOAD_OUT"), "OVERLOAD_OUT not set"), "w"))
  local unmatched_total = 0
  for _, thread in ipairs(threads) do
    local t_id, t_seq = thread:get("id"), thread:get("seq")
    local t_sent, t_status, t_latency, t_late = thread:get("sent"), thread:get("status"), thread:get("latency"), thread:get("late")
    unmatched_total = unmatched_total + thread:get("unmatched")
    for n = 1, t_seq do
      out:write(string.format("r\t%d\t%d\t%.0f\t%s\t%s\t%s\n", t_id, n, t_sent[n] or -1,
        t_status[n] or "-", t_latency[n] and string.format("%.0f", t_latency[n]) or "-",
        t_late[n] and string.format("%.0f", t_late[n]) or "-"))
    end
  end
  local e = summary.errors
  out:write(string.format("summary\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\n", summary.duration, summary.requests, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout, unmatched_total))
  out:close()
end
