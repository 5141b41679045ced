-- wrk script: cycle through pre-built (pre-signed) requests, one file line each.
--
--   wrk -t1 -c64 -d5s -s benchmarks/signed.lua http://127.0.0.1:PORT -- requests.tsv
--
-- A line is `path<TAB>installation<TAB>timestamp<TAB>signature<TAB>json body`; empty
-- fields send no header (the hello world's lines are `/hello<TAB><TAB><TAB><TAB>{...}`).
-- With several threads, thread k takes every line whose number is k modulo the count.
-- done() prints one JSON line on stdout: what benchmarks/_wrk.py reads.

local threads = {}
local wrapped = false

function setup(thread)
  thread:set("index", #threads)
  table.insert(threads, thread)
end

function init(args)
  local file = assert(io.open(args[1], "r"))
  local count = tonumber(args[2]) or 1
  requests = {}
  local n = 0
  for line in file:lines() do
    if n % count == (index or 0) then
      local path, installation, stamp, signature, body =
        line:match("^([^\t]*)\t([^\t]*)\t([^\t]*)\t([^\t]*)\t(.*)$")
      local headers = { ["Content-Type"] = "application/json" }
      if installation ~= "" then
        headers["X-Integration-Installation"] = installation
        headers["X-Integration-Timestamp"] = stamp
        headers["X-Integration-Signature"] = signature
      end
      table.insert(requests, wrk.format("POST", path, headers, body))
    end
    n = n + 1
  end
  file:close()
  next_request = 1
  cycles = 0
end

function request()
  local built = requests[next_request]
  next_request = next_request + 1
  if next_request > #requests then
    next_request = 1
    cycles = cycles + 1
  end
  return built
end

function done(summary, latency, requests)
  for _, thread in ipairs(threads) do
    if thread:get("cycles") > 0 then
      wrapped = true
    end
  end
  local errors = summary.errors
  io.write(string.format(
    '{"requests": %d, "duration_us": %d, "non_2xx": %d, "connect_errors": %d, ' ..
    '"read_errors": %d, "write_errors": %d, "timeouts": %d, "p50_us": %d, "p99_us": %d, ' ..
    '"wrapped": %s}\n',
    summary.requests, summary.duration, errors.status, errors.connect, errors.read,
    errors.write, errors.timeout, latency:percentile(50), latency:percentile(99),
    tostring(wrapped)))
end
