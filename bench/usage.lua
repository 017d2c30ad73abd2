-- wrk script: GET /usage/{id} for a window, a random user of 1..USAGE_USERS each time; prints one summary line as JSON.
local users = tonumber(os.getenv("USAGE_USERS") or "100000")
local query = os.getenv("USAGE_QUERY") or ""
local thread_seed = 0

setup = function(thread)
  thread_seed = thread_seed + 1
  thread:set("seed", thread_seed)
end

init = function()
  math.randomseed(os.time() + (seed or 0))
end

request = function()
  return wrk.format("GET", "/usage/" .. math.random(1, users) .. query)
end

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRK_SUMMARY {"requests":%d,"duration_us":%d,"non2xx":%d,"connect":%d,"read":%d,"write":%d,"timeout":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,"mean_us":%.0f,"max_us":%d}\n',
    summary.requests, summary.duration, e.status, e.connect, e.read, e.write, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.mean, latency.max))
end
