-- wrk script: POST one chat completion, the same body every time.
--   wrk -s bench/chat.lua URL -- <model> <stream:0|1> <temperature> [cache_opt_in:0|1]
-- The bearer key comes from the environment (BENCH_API_KEY), never from the command line, and so
-- do a target's own headers (BENCH_HEADERS: one "Name: value" per line, e.g. Portkey's provider).
-- done() prints one JSON line (prefixed BENCH_RESULT) that the driver parses.

local function build_body(model, stream, temperature, cache_opt_in)
   local parts = {
      '{"model":"' .. model .. '"',
      '"messages":[{"role":"system","content":"You are a concise assistant."},' ..
         '{"role":"user","content":"Say hello in one short sentence."}]',
      '"max_tokens":32',
      '"temperature":' .. temperature,
   }
   if stream then
      parts[#parts + 1] = '"stream":true,"stream_options":{"include_usage":true}'
   end
   if cache_opt_in then
      -- LiteLLM runs its cache in "default_off" mode; this opts a request in.
      parts[#parts + 1] = '"cache":{"use-cache":true}'
   end
   return table.concat(parts, ",") .. "}"
end

function init(args)
   local model = args[1] or "gpt-4o-mini"
   local stream = args[2] == "1"
   local temperature = args[3] or "0.7"
   local cache_opt_in = args[4] == "1"
   wrk.method = "POST"
   wrk.headers["Content-Type"] = "application/json"
   local key = os.getenv("BENCH_API_KEY")
   if key and key ~= "" then
      wrk.headers["Authorization"] = "Bearer " .. key
   end
   local extra = os.getenv("BENCH_HEADERS") or ""
   for line in extra:gmatch("[^\n]+") do
      local name, value = line:match("^%s*([^:]+):%s*(.-)%s*$")
      if name then
         wrk.headers[name] = value
      end
   end
   wrk.body = build_body(model, stream, temperature, cache_opt_in)
end

function done(summary, latency, requests)
   local e = summary.errors
   io.write(string.format(
      'BENCH_RESULT {"requests":%d,"duration_us":%d,"bytes":%d,' ..
      '"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d,"mean_us":%.1f,' ..
      '"connect_errors":%d,"read_errors":%d,"write_errors":%d,"timeouts":%d,"non_2xx":%d}\n',
      summary.requests, summary.duration, summary.bytes,
      latency:percentile(50), latency:percentile(90), latency:percentile(99),
      latency.max, latency.mean,
      e.connect, e.read, e.write, e.timeout, e.status))
end
