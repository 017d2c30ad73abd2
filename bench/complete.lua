-- wrk script: POST /complete with a small prompt, user ids 1..1000 in turn; prints one summary line as JSON.
-- BENCH_USER_ID: every request as this one user instead; BENCH_SERVICE_TIER: send this service_tier (e.g. flex);
-- BENCH_AUTHORIZATION: send this Authorization header (a key of BENCH_USER_ID's, for a gateway with keys on)
-- BENCH_STREAM=1: ask for a streamed answer ("stream": true)
local counter = 0
local only_user = tonumber(os.getenv("BENCH_USER_ID") or "")
local tier = os.getenv("BENCH_SERVICE_TIER")
local tier_field = tier and tier ~= "" and string.format(',"service_tier":"%s"', tier) or ""
local stream_field = os.getenv("BENCH_STREAM") == "1" and ',"stream":true' or ""
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
if os.getenv("BENCH_AUTHORIZATION") and os.getenv("BENCH_AUTHORIZATION") ~= "" then
  wrk.headers["Authorization"] = os.getenv("BENCH_AUTHORIZATION")
end

request = function()
  counter = counter + 1
  local body = string.format('{"prompt":"say hello to user %d","user_id":%d,"max_tokens":16%s%s}', counter,
    only_user or (counter % 1000 + 1), tier_field, stream_field)
  return wrk.format(nil, os.getenv("WRK_PATH") or "/complete", nil, body)
end

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRK_SUMMARY {"requests":%d,"duration_us":%d,"non2xx":%d,"connect":%d,"read":%d,"write":%d,"timeout":%d,"p50_us":%d,"p99_us":%d,"mean_us":%.0f,"max_us":%d}\n',
    summary.requests, summary.duration, e.status, e.connect, e.read, e.write, e.timeout,
    latency:percentile(50), latency:percentile(99), latency.mean, latency.max))
end
