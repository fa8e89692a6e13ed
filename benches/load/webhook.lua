-- wrk script for benches/load/run (Debian's wrk 4.1, LuaJIT).
--
--   wrk -t2 -c256 -d15s --latency -s benches/load/webhook.lua http://127.0.0.1:PORT \
--       -- mode=webhook size=100 topic=bench auth=bench:benchpass duration=15 drain=1
--
-- Arguments after "--" are key=value:
--   mode      webhook  POST /webhook?topic=T, Basic auth, raw body, X-Event-Id + X-Source headers
--             healthz  GET /healthz (the no-op ceiling: same listener, same HTTP parser)
--             strimzi  POST /topics/T to the Strimzi Kafka Bridge, one record per request,
--                      Content-Type application/vnd.kafka.binary.v2+json, value = base64 of
--                      `size` bytes, so the Kafka record value is exactly `size` bytes
--   size      record value size in bytes (default 100)
--   topic     Kafka topic (default bench)
--   auth      user:password for Basic auth (webhook mode)
--   duration  the -d of this wrk run in seconds (needed for the drain phase)
--   drain     seconds at the end of the run during which no more produce requests are sent:
--             every connection switches to a request that writes nothing to Kafka
--             (GET /healthz, or GET /healthy for Strimzi). wrk cuts the run off with requests
--             still in flight; with the drain, the ones in flight at the cutoff write nothing,
--             so "records added to Kafka" must EQUAL "2xx produce responses counted here".
--             drain=0 disables it (then only a bound can be checked).
--
-- done() prints one line "BENCH_JSON {...}" with the counts of every thread and wrk's latency
-- percentiles, for benches/load/bench.py to parse.

local ffi = require("ffi")
ffi.cdef [[
  typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
  int clock_gettime(int clk, bench_timespec *ts);
  int gettid(void);
]]
local ts = ffi.new("bench_timespec")
local function now()
  ffi.C.clock_gettime(1, ts) -- CLOCK_MONOTONIC
  return tonumber(ts.tv_sec) + tonumber(ts.tv_nsec) * 1e-9
end

local b64chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
local function base64(s)
  return ((s:gsub(".", function(x)
    local r, b = "", x:byte()
    for i = 8, 1, -1 do r = r .. (b % 2 ^ i - b % 2 ^ (i - 1) > 0 and "1" or "0") end
    return r
  end) .. "0000"):gsub("%d%d%d?%d?%d?%d?", function(x)
    if #x < 6 then return "" end
    local c = 0
    for i = 1, 6 do c = c + (x:sub(i, i) == "1" and 2 ^ (6 - i) or 0) end
    return b64chars:sub(c + 1, c + 1)
  end) .. ({ "", "==", "=" })[#s % 3 + 1])
end

-- deterministic printable payload of n bytes
local function payload(n)
  local alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
  local parts, x = {}, 12345
  for i = 1, n do
    x = (x * 1103515245 + 12345) % 2147483648
    local k = math.floor(x / 65536) % #alphabet + 1
    parts[i] = alphabet:sub(k, k)
  end
  return table.concat(parts)
end

-- ---------------------------------------------------------------- main thread: collect threads
local threads = {}
local thread_no = 0
function setup(thread)
  thread_no = thread_no + 1
  thread:set("thread_no", thread_no)
  table.insert(threads, thread)
end

-- ---------------------------------------------------------------- per thread state (globals,
-- so that done() can read them with thread:get)
sent_main, sent_drain = 0, 0
resp_main, resp_drain = 0, 0
main_2xx, main_4xx, main_5xx, main_other = 0, 0, 0, 0
main_2xx_with_offset = 0
drain_bad = 0
main_secs = 0

local mode, main_req, drain_req, deadline
local init_tid, started = nil, false

function init(args)
  local opt = { mode = "webhook", size = "100", topic = "bench", auth = "bench:benchpass",
                duration = "15", drain = "1" }
  for _, a in ipairs(args) do
    local k, v = a:match("^([%w_]+)=(.*)$")
    if not k then error("bad argument " .. a .. " (expected key=value)") end
    opt[k] = v
  end
  mode = opt.mode
  local size = tonumber(opt.size)
  local t0 = now()
  local drain = tonumber(opt.drain)
  if mode == "healthz" then drain = 0 end
  deadline = t0 + tonumber(opt.duration) - drain
  main_secs = tonumber(opt.duration) - drain
  local tn = thread_no or 0
  init_tid = ffi.C.gettid()

  if mode == "webhook" then
    main_req = wrk.format("POST", "/webhook?topic=" .. opt.topic, {
      ["Host"] = "127.0.0.1",
      ["Authorization"] = "Basic " .. base64(opt.auth),
      ["Content-Type"] = "application/octet-stream",
      ["X-Event-Id"] = string.format("bench-%d-0001", tn),
      ["X-Source"] = "wrk-load-test",
    }, payload(size))
    drain_req = wrk.format("GET", "/healthz", { ["Host"] = "127.0.0.1" })
  elseif mode == "healthz" then
    main_req = wrk.format("GET", "/healthz", { ["Host"] = "127.0.0.1" })
    drain_req = main_req
  elseif mode == "strimzi" then
    main_req = wrk.format("POST", "/topics/" .. opt.topic, {
      ["Host"] = "127.0.0.1",
      ["Content-Type"] = "application/vnd.kafka.binary.v2+json",
    }, '{"records":[{"value":"' .. base64(payload(size)) .. '"}]}')
    drain_req = wrk.format("GET", "/healthy", { ["Host"] = "127.0.0.1" })
  else
    error("unknown mode " .. mode)
  end
end

function request()
  if not started then
    -- wrk calls request() once on the first thread's script from its main thread, to verify
    -- the request, before the thread runs: that request is never sent, so it is not counted
    if ffi.C.gettid() == init_tid then return main_req end
    started = true
  end
  if now() < deadline then
    sent_main = sent_main + 1
    return main_req
  end
  sent_drain = sent_drain + 1
  return drain_req
end

-- Which request a response belongs to is told by its body/status: the drain answers are
-- {"status":"ok"} (kafka-webhook /healthz) or an empty 204 (Strimzi /healthy); a produce
-- answer is never either of those.
local function is_drain(status, body)
  if mode == "webhook" then
    return status == 200 and body ~= nil and body:find('^%s*{"status":%s*"ok"}%s*$') ~= nil
  elseif mode == "strimzi" then
    return status == 204
  end
  return false
end

function response(status, headers, body)
  if mode ~= "healthz" and is_drain(status, body) then
    resp_drain = resp_drain + 1
    return
  end
  resp_main = resp_main + 1
  if status >= 200 and status < 300 then
    main_2xx = main_2xx + 1
    if body ~= nil and body:find('"offset', 1, true) then
      main_2xx_with_offset = main_2xx_with_offset + 1
    end
  elseif status >= 400 and status < 500 then
    main_4xx = main_4xx + 1
  elseif status >= 500 then
    main_5xx = main_5xx + 1
  else
    main_other = main_other + 1
  end
end

function done(summary, latency, requests)
  local keys = { "sent_main", "sent_drain", "resp_main", "resp_drain", "main_2xx", "main_4xx",
                 "main_5xx", "main_other", "main_2xx_with_offset" }
  local tot = {}
  for _, k in ipairs(keys) do tot[k] = 0 end
  local secs = 0
  for _, t in ipairs(threads) do
    for _, k in ipairs(keys) do tot[k] = tot[k] + (t:get(k) or 0) end
    secs = t:get("main_secs") or secs
  end
  local out = {}
  for _, k in ipairs(keys) do table.insert(out, string.format('"%s":%d', k, tot[k])) end
  table.insert(out, string.format('"main_secs":%.3f', secs))
  table.insert(out, string.format('"duration_us":%d', summary.duration))
  table.insert(out, string.format('"wrk_requests":%d', summary.requests))
  table.insert(out, string.format('"wrk_bytes":%d', summary.bytes))
  local e = summary.errors
  table.insert(out, string.format('"err_connect":%d,"err_read":%d,"err_write":%d,"err_status":%d,"err_timeout":%d',
    e.connect, e.read, e.write, e.status, e.timeout))
  table.insert(out, string.format('"lat_mean_us":%.1f,"lat_max_us":%d', latency.mean, latency.max))
  for _, p in ipairs({ 50, 75, 90, 99, 99.9 }) do
    table.insert(out, string.format('"lat_p%s_us":%d', tostring(p):gsub("%.", "_"), latency:percentile(p)))
  end
  io.write("BENCH_JSON {" .. table.concat(out, ",") .. "}\n")
end
