-- GET a waiting user's status, tickets taken at random from tickets.txt.
local tickets = {}
function init(args)
  for line in io.lines(os.getenv("TICKETS") or "tickets.txt") do
    tickets[#tickets + 1] = line
  end
  math.randomseed(os.time() + (tonumber(args[1]) or 0))
end
function request()
  return wrk.format("GET", "/v1/events/bench/queue/" .. tickets[math.random(#tickets)])
end
