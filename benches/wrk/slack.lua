-- wrk script: replays signed slash commands written by
--   gantry bench --emit requests.tsv -n N --text "whoami"
-- each thread sends its own share, so no delivery is sent twice:
--   wrk -t2 -c256 -d10s -s benches/wrk/slack.lua http://127.0.0.1:8080 -- requests.tsv 2

local counter = 0
function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
end

local requests = {}
local sent = 0
function init(args)
  local file = args[1] or "requests.tsv"
  local threads = tonumber(args[2] or "1")
  local n = 0
  for line in io.lines(file) do
    if n % threads == id then
      local ts, sig, body = line:match("([^\t]+)\t([^\t]+)\t(.*)")
      requests[#requests + 1] = wrk.format("POST", "/slack/commands", {
        ["Content-Type"] = "application/x-www-form-urlencoded",
        ["X-Slack-Request-Timestamp"] = ts,
        ["X-Slack-Signature"] = sig,
      }, body)
    end
    n = n + 1
  end
end

function request()
  sent = sent + 1
  -- Past the end the same deliveries come again and are answered as duplicates.
  return requests[((sent - 1) % #requests) + 1]
end

function done(summary, latency, requests)
  io.write(string.format("non-2xx or errors: %d\n",
    summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
