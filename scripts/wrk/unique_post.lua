-- POST a body with a user id (and optionally a seat) unique across threads.
-- MODE=join|hold|claim selects the path and body; OFFSET shifts the numbering
-- (a second run against the same server then takes other users); EVENT names
-- the hold's venue (default `seats`).
local counter = 0
local threads = {}
local mode = os.getenv("MODE") or "join"
local token = os.getenv("SERVICE_TOKEN") or ""
local offset = tonumber(os.getenv("OFFSET") or "0")
local event = os.getenv("EVENT") or "seats"
function setup(thread)
  thread:set("tid", #threads)
  table.insert(threads, thread)
end
function init(args)
  nthreads = tonumber(os.getenv("THREADS") or "2")
end
function request()
  local n = offset + counter * nthreads + tid
  counter = counter + 1
  local user = "w-" .. n
  -- Every mode is the backend's call (service realm): a join names its user,
  -- which a `signed` event only trusts from the service token.
  local headers = { ["Content-Type"] = "application/json",
                    ["Authorization"] = "Bearer " .. token }
  if mode == "join" then
    return wrk.format("POST", "/v1/events/bench/queue", headers, '{"user":"' .. user .. '"}')
  end
  if mode == "claim" then
    return wrk.format("POST", "/v1/coupons/bench/claims", headers, '{"user":"' .. user .. '"}')
  end
  -- hold: one seat each, seat n of the 1,000,000 in S<0..9>-<1..10>-<1..10000>
  -- of EVENT; an event has at most 1,000,000 seats, so hold 1,000,000 and on
  -- goes to the venue's spill events EVENT-1, EVENT-2, … (http-bench.sh
  -- creates enough of them for the pass): no seat is taken twice.
  local k = n % 1000000
  local venue = event
  if n >= 1000000 then venue = event .. "-" .. math.floor(n / 1000000) end
  local seat = "S" .. math.floor(k / 100000) .. "-" .. (math.floor(k / 10000) % 10 + 1) .. "-" .. (k % 10000 + 1)
  return wrk.format("POST", "/v1/events/" .. venue .. "/holds", headers,
    '{"user":"' .. user .. '","seats":["' .. seat .. '"]}')
end
