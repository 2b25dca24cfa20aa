-- wrk script for `bench-api`: GET <prefix><random id><suffix>, the ids read from a file.
--   wrk ... -s bench/wrk/random-id.lua <url> -- <ids file> <path prefix> [path suffix] [seed]
-- Prints one line `WRK {json}` with the request count, errors and latency quantiles (µs).
local ids = {}
local prefix, suffix = "/", ""

function init(args)
  for line in io.lines(args[1]) do
    ids[#ids + 1] = line
  end
  prefix = args[2]
  suffix = args[3] or ""
  -- Each wrk thread gets its own sequence.
  math.randomseed((tonumber(args[4]) or 1) + #ids + math.floor(os.clock() * 1e6))
end

function request()
  return wrk.format("GET", prefix .. ids[math.random(#ids)] .. suffix)
end

function done(summary, latency, _requests)
  local e = summary.errors
  io.write(string.format(
    'WRK {"requests":%d,"duration_us":%d,"errors":%d,"non_2xx_or_3xx":%d,"p50_us":%d,"p99_us":%d}\n',
    summary.requests, summary.duration, e.connect + e.read + e.write + e.timeout, e.status,
    latency:percentile(50), latency:percentile(99)))
end
