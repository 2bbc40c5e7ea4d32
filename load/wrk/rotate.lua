-- Rotates pre-signed webhook bodies, one shard file per wrk thread, so that every request carries a new event.
-- Make the shards with:  dotnet load/FastIngest.Load/bin/Release/net10.0/FastIngest.Load.dll gen-wrk --out DIR --shards T
-- Run:                   wrk -t T -c 256 -d 10s --latency -s load/wrk/rotate.lua http://127.0.0.1:18080/webhooks/t0 -- DIR
-- Each shard line is "sha256=<hex><TAB><body>". When a shard runs out it starts again (those repeats are duplicates).
-- Paced:                 WRK_PERIOD_MS=9.5 wrk ...   each connection waits that long (dithered between the two whole
--                        milliseconds around it, as wrk's timer takes whole ms) between a response and its next
--                        request, which holds the rate near connections * 1000 / (period + latency) requests/s: latency
--                        at a set load. (wrk decides whether a script paces before init runs, hence the variable.)

local next_id = 0

function setup(thread)
  thread:set("id", next_id)
  next_id = next_id + 1
end

function init(args)
  local dir = args[1] or "wrk-bodies"
  local path = dir .. "/shard-" .. id .. ".tsv"
  local file = assert(io.open(path, "r"), "cannot open " .. path)
  requests = {}
  for line in file:lines() do
    local tab = line:find("\t", 1, true)
    if tab then
      local headers = {
        ["Content-Type"] = "application/json",
        ["X-Hub-Signature-256"] = line:sub(1, tab - 1),
      }
      requests[#requests + 1] = wrk.format("POST", nil, headers, line:sub(tab + 1))
    end
  end
  file:close()
  index = 0
  wrapped = 0
  math.randomseed(id * 7919 + 17)
end

local period = tonumber(os.getenv("WRK_PERIOD_MS") or "")
if period then
  function delay()
    local whole = math.floor(period)
    if math.random() < period - whole then
      return whole + 1
    end
    return whole
  end
end

function request()
  index = index + 1
  if index > #requests then
    index = 1
    wrapped = wrapped + 1
  end
  return requests[index]
end
